"""API tokens: scopes, the hashed token store, and the migration of the old plain token file.

The store is a JSON file (mode 0600, refused when others can read it) holding, per token, a name (the
audit principal), its scopes, a random salt and sha256(salt + token): the token itself is never
written down. Tokens made here are 256 random bits, so a fast salted hash is enough (a slow KDF would
cost every request on a Pi). The old plain file (``name:token`` lines) is imported once with
auth.migrated_scopes and then removed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError, FacegateError
from daemon.ops.private_files import check_private, write_private

log = logging.getLogger(__name__)

ADMIN = "admin"  # everything, including library reset, other owners' tasks, device settings
LIBRARY = "library"  # change the face library: register/delete faces and images, groups, bindings
RECOGNIZE = "recognize"  # 1:1 compare, 1:N search, the feature-vector API
PRIVACY = "privacy"  # the blur API and the video blur tasks
STREAM = "stream"  # the camera stream, snapshot, stream info, minting signed stream URLs
READ = "read"  # read-only: list/get faces, images, groups, events, stream info
METRICS = "metrics"  # GET /metrics only: a Prometheus scraper's token reads no face data
SCOPES = (ADMIN, LIBRARY, RECOGNIZE, PRIVACY, STREAM, READ, METRICS)
# A scope also grants these (admin grants everything).
IMPLIED = {LIBRARY: frozenset({READ})}

TOKEN_PREFIX = "fgt_"
MIN_TOKEN_LENGTH = 16
# Values from documentation and tutorials (seed 002's own .env example among them) and their pieces.
EXAMPLE_TOKENS = frozenset(
    {
        "changeme",
        "change-me",
        "example",
        "secret",
        "token",
        "your-token",
        "your-token-here",
        "dev-token",
        "change-me-to-a-long-random-token",
        "test-token",
        "api-token",
        "password",
    }
)
EXAMPLE_FRAGMENTS = (
    "changeme",
    "change-me",
    "change_me",
    "yourtoken",
    "your-token",
    "example",
    "password",
    "secret",
    "long-random",
    "longrandom",
    "placeholder",
    "replace-me",
    "replaceme",
)
MIN_DISTINCT_CHARACTERS = 10
NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class TokenError(FacegateError):
    """A token store operation is not possible (unknown name, duplicate name, bad scope)."""


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """Scopes with what they imply; admin is every scope."""
    granted = set(scopes)
    if ADMIN in granted:
        return frozenset(SCOPES)
    for scope in list(granted):
        granted |= IMPLIED.get(scope, frozenset())
    return frozenset(granted)


def weakness(token: str) -> str | None:
    """Why a token is an example or guessable, or None when it looks random enough."""
    lowered = token.lower()
    if len(token) < MIN_TOKEN_LENGTH:
        return f"shorter than {MIN_TOKEN_LENGTH} characters"
    if lowered in EXAMPLE_TOKENS or any(fragment in lowered for fragment in EXAMPLE_FRAGMENTS):
        return "an example value from documentation"
    if len(set(token)) < MIN_DISTINCT_CHARACTERS:
        return f"fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenEntry:
    name: str
    scopes: frozenset[str]
    salt: bytes
    digest: bytes
    created: float
    weak: str | None = None  # why the token is weak (only imported tokens can be)

    def matches(self, candidate: bytes) -> bool:
        return hmac.compare_digest(hashlib.sha256(self.salt + candidate).digest(), self.digest)

    @property
    def granted(self) -> frozenset[str]:
        return expand(self.scopes)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "scopes": sorted(self.scopes),
            "salt": self.salt.hex(),
            "sha256": self.digest.hex(),
            "created": self.created,
        }
        if self.weak:
            body["weak"] = self.weak
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenEntry:
        return cls(
            data["name"],
            frozenset(data["scopes"]),
            bytes.fromhex(data["salt"]),
            bytes.fromhex(data["sha256"]),
            float(data.get("created", 0)),
            data.get("weak"),
        )

    @classmethod
    def make(cls, name: str, token: str, scopes: Iterable[str], weak: str | None = None) -> TokenEntry:
        check_name(name)
        scopes = check_scopes(scopes)
        salt = secrets.token_bytes(16)
        return cls(name, scopes, salt, hashlib.sha256(salt + token.encode()).digest(), time.time(), weak)


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise TokenError(f"invalid token name {name!r}: 1-64 letters, digits, '.', '_' or '-'")


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(scopes)
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r}: one of {', '.join(SCOPES)}")
    if not chosen:
        raise TokenError("a token needs at least one scope")
    return chosen


@dataclass(frozen=True)
class TokenRegistry:
    """The tokens in force (immutable: a change means a new registry)."""

    entries: tuple[TokenEntry, ...] = ()

    def lookup(self, candidate: str) -> TokenEntry | None:
        """The entry whose token is candidate; every entry is checked (no early exit)."""
        given = candidate.encode("utf-8", "surrogateescape")
        found = None
        for entry in self.entries:
            if entry.matches(given):
                found = entry
        return found

    def principal_for(self, candidate: str) -> str | None:
        """The name of the token candidate is (the web page's sign-in check), or None."""
        entry = self.lookup(candidate)
        return entry.name if entry is not None else None

    def by_name(self, name: str) -> TokenEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def of(cls, tokens: Iterable[tuple[str, str, Iterable[str]]]) -> TokenRegistry:
        """A registry from (name, token, scopes) triples (tests and the plain-file import)."""
        return cls(
            tuple(TokenEntry.make(name, token, scopes, weakness(token)) for name, token, scopes in tokens)
        )


def parse_plain(text: str, source: str) -> list[tuple[str, str]]:
    """(name, token) pairs of the old plain format: 'token' or 'name:token' per line, '#' comments."""
    pairs: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, token = line.rpartition(":")
        name = name.strip() or f"token{len(pairs) + 1}"
        token = token.strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{source}:{number}: token too short or an example value "
                f"(at least {MIN_TOKEN_LENGTH} characters)"
            )
        pairs.append((name, token))
    return pairs


class TokenStore:
    """The hashed token file: load, add, revoke. Callers hold no lock: the CLI and the daemon's start
    are the only writers, and each write replaces the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> TokenRegistry:
        if not self.path.exists():
            return TokenRegistry()
        check_private(self.path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = tuple(TokenEntry.from_json(item) for item in data["tokens"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"token store {self.path} is unreadable: {exc}") from exc
        return TokenRegistry(entries)

    def save(self, registry: TokenRegistry) -> None:
        body = {"version": 1, "tokens": [entry.to_json() for entry in registry.entries]}
        write_private(self.path, json.dumps(body, indent=1) + "\n")

    def add(self, name: str, scopes: Iterable[str], token: str | None = None) -> str:
        """Store a new token (random unless given) and return it: the only time it is shown."""
        registry = self.load()
        if registry.by_name(name) is not None:
            raise TokenError(f"a token named {name!r} exists; revoke it first or choose another name")
        token = token or new_token()
        entry = TokenEntry.make(name, token, scopes, weakness(token))
        if entry.weak:
            raise TokenError(f"refusing a weak token: {entry.weak}")
        self.save(TokenRegistry((*registry.entries, entry)))
        return token

    def revoke(self, name: str) -> None:
        registry = self.load()
        if registry.by_name(name) is None:
            raise TokenError(f"no token named {name!r}")
        self.save(TokenRegistry(tuple(e for e in registry.entries if e.name != name)))

    def migrate(self, plain: Path, scopes: Iterable[str]) -> int:
        """Import the old plain token file (kept tokens work with ``scopes``), then remove it.

        Idempotent: a token already in the store is not imported twice, and a file that cannot be
        removed (read-only location) is imported again harmlessly at the next start.
        """
        check_private(plain)
        try:
            text = plain.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read token file {plain}: {exc}") from exc
        registry = self.load()
        added: list[TokenEntry] = []
        for name, token in parse_plain(text, str(plain)):
            if registry.lookup(token) is not None or any(e.matches(token.encode()) for e in added):
                continue
            base = unique = _safe_name(name)
            while registry.by_name(unique) is not None or any(e.name == unique for e in added):
                unique = f"{base[:59]}-{secrets.token_hex(2)}"
            added.append(TokenEntry.make(unique, token, scopes, weakness(token)))
        if added:
            self.save(TokenRegistry((*registry.entries, *added)))
        try:
            plain.unlink()
        except OSError as exc:
            log.warning("imported %s but cannot remove it (%s): delete it by hand", plain, exc.strerror)
        return len(added)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    return cleaned or "token"


FIRST_TOKEN_FILE = "admin-token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_for_serving(
    store_path: Path, plain_path: Path, migrated_scopes: Iterable[str], host: str
) -> TokenRegistry:
    """The tokens the daemon serves with: the plain file migrated, the first admin token made on loopback.

    Refuses (ConfigError) a token file others can read, no token on a non-loopback address, and weak or
    example tokens on a non-loopback address (on loopback they are only warned about).
    """
    store = TokenStore(store_path)
    loopback = is_loopback(host)
    if plain_path.exists():
        count = store.migrate(plain_path, migrated_scopes)
        if count:
            log.warning(
                "imported %d token(s) from %s into %s (hashed) with scopes %s",
                count,
                plain_path,
                store_path,
                ",".join(migrated_scopes),
            )
    if not store.exists():
        if not loopback:
            raise ConfigError(
                f"refusing to listen on {host} without a token store: create one with "
                f"'facegate token add NAME --scope admin' ({store_path})"
            )
        first = store_path.parent / FIRST_TOKEN_FILE
        token = store.add("admin", [ADMIN])
        write_private(first, token + "\n")
        log.warning(
            "created an admin API token: it is in %s (mode 0600); copy it, then delete the file", first
        )
    elif (store_path.parent / FIRST_TOKEN_FILE).exists():
        log.warning("%s still holds the first admin token: delete it", store_path.parent / FIRST_TOKEN_FILE)
    registry = store.load()
    if not registry and not loopback:
        raise ConfigError(f"refusing to listen on {host}: the token store {store_path} holds no token")
    if not registry:
        log.warning("token store %s holds no token: every request but /health will be refused", store_path)
    for entry in registry.entries:
        if entry.weak and not loopback:
            raise ConfigError(
                f"refusing to listen on {host}: token {entry.name!r} is weak ({entry.weak}); "
                f"revoke it ('facegate token revoke {entry.name}') and add a random one"
            )
        if entry.weak:
            log.warning(
                "token %r is weak (%s): it would be refused on a non-loopback address", entry.name, entry.weak
            )
    return registry
