"""Bearer-token authentication for every route but /health.

Missing header → 401 "Missing Authorization header"; not ``Bearer <token>`` → 401; unknown token → 403.
Each answer is in the format of the route's API family (daemon/api/families.py). Tokens come from a file
(one per line, ``token`` or ``name:token``; ``#`` comments), read at start; the name is the principal
in the audit log. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from daemon.api.families import error_response
from daemon.api.middleware import Handler
from daemon.appkeys import PRINCIPAL
from daemon.errors import ConfigError

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/health"})
MIN_TOKEN_LENGTH = 16
EXAMPLE_TOKENS = frozenset({"changeme", "change-me", "example", "secret", "token", "your-token-here"})


@dataclass(frozen=True)
class TokenSet:
    tokens: tuple[tuple[str, bytes], ...]  # (principal, token bytes)

    def principal_for(self, candidate: str) -> str | None:
        """The principal owning candidate, comparing against every token in constant time."""
        given = candidate.encode()
        found = None
        for principal, token in self.tokens:
            if hmac.compare_digest(given, token):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self.tokens)


def parse_tokens(text: str, source: str) -> TokenSet:
    tokens = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, token = line.rpartition(":")
        name = name.strip() or f"token{len(tokens) + 1}"
        token = token.strip()
        if len(token) < MIN_TOKEN_LENGTH or token.lower() in EXAMPLE_TOKENS:
            raise ConfigError(
                f"{source}:{number}: token too short or an example value "
                f"(at least {MIN_TOKEN_LENGTH} characters)"
            )
        tokens.append((name, token.encode()))
    return TokenSet(tuple(tokens))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_or_create_tokens(path: Path, host: str) -> TokenSet:
    """Read the token file. On a loopback address a missing file is created with one random token
    (mode 0600, path logged); on any other address a missing or empty file refuses the start."""
    if not path.exists():
        if not is_loopback(host):
            raise ConfigError(
                f"refusing to listen on {host} without a token file: create {path} "
                "(one token per line, mode 0600) or set auth.token_file"
            )
        create_token_file(path)
        log.warning(
            "created a random API token in %s (mode 0600): send it as 'Authorization: Bearer …'", path
        )
    try:
        tokens = parse_tokens(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from exc
    if not tokens and not is_loopback(host):
        raise ConfigError(f"refusing to listen on {host}: the token file {path} holds no token")
    if not tokens:
        log.warning("token file %s holds no token: every request but /health will be refused", path)
    return tokens


def create_token_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# Facegate API tokens: one per line, 'token' or 'name:token'.\nadmin:{token}\n")
    return token


def make_auth_middleware(tokens: TokenSet, public_paths: Iterable[str] = PUBLIC_PATHS):
    public = frozenset(public_paths)

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in public or request.method == "OPTIONS":
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is None:
            return error_response(
                request, 401, "Missing Authorization header", {"WWW-Authenticate": "Bearer"}
            )
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return error_response(
                request,
                401,
                "Invalid Authorization header: expected 'Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        principal = tokens.principal_for(credential.strip())
        if principal is None:
            return error_response(request, 403, "Invalid token")
        request[PRINCIPAL] = principal
        return await handler(request)

    return auth_middleware
