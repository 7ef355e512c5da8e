"""Signed stream URLs: a browser <img> or a camera integration cannot send a Bearer header.

A link is the route's path with ``expires`` (Unix time), ``by`` (the principal that minted it) and
``sig`` = HMAC-SHA256(key, path, principal, expires) in the query. It works only for that path, only
until it expires, and only while the minting token still exists with the stream scope (revoking the
token revokes its links). The key is 32 random bytes in a 0600 file of the state directory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlencode

from daemon.errors import FacegateError
from daemon.ops.private_files import check_private, write_private

KEY_BYTES = 32


class LinkInvalid(FacegateError):
    """A signed URL that is malformed, expired, or signed for something else."""


def load_or_create_key(path: Path) -> bytes:
    if not path.exists():
        write_private(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
    check_private(path)
    key = base64.b64decode(path.read_text(encoding="ascii").strip())
    if len(key) < KEY_BYTES:
        raise FacegateError(f"{path}: the stream URL key is shorter than {KEY_BYTES} bytes")
    return key


class StreamLinks:
    """Signs and checks links; the key is read (or made) by load(), at the app's start."""

    def __init__(self, key_path: Path, max_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self.key_path = key_path
        self.max_seconds = max_seconds
        self.clock = clock
        self._key: bytes | None = None

    def load(self) -> None:
        self._key = load_or_create_key(self.key_path)

    def _signature(self, path: str, principal: str, expires: int) -> str:
        if self._key is None:
            raise LinkInvalid("signed URLs are not available before the daemon has started")
        message = f"{path}\n{principal}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, path: str, principal: str, seconds: int) -> tuple[str, int]:
        """(the signed URL, its expiry as Unix time) for ``path``, valid ``seconds`` (capped)."""
        expires = int(self.clock()) + max(1, min(seconds, self.max_seconds))
        query = urlencode(
            {"expires": expires, "by": principal, "sig": self._signature(path, principal, expires)}
        )
        return f"{path}?{query}", expires

    def verify(self, path: str, query: Mapping[str, str]) -> str:
        """The principal that signed a link for ``path``; LinkInvalid otherwise."""
        try:
            expires = int(query["expires"])
            principal = query["by"]
            given = query["sig"]
        except (KeyError, ValueError):
            raise LinkInvalid("malformed signed URL") from None
        expected = self._signature(path, principal, expires)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise LinkInvalid("invalid signature (signed for another route, or altered)")
        if expires <= self.clock():
            raise LinkInvalid("signed URL expired")
        return principal
