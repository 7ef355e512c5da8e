"""Identifiers of the device API: imageId and faceToken (spec DEVICE_API.md "Identifiers")."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

FACE_TOKEN_BYTES = 18  # 18 random bytes → 24 base64url characters, no padding
IMAGE_ID_MAX_BYTES = 32
_IMAGE_ID_RE = re.compile(rf"[A-Za-z0-9_=-]{{1,{IMAGE_ID_MAX_BYTES}}}")


def image_id_from_bytes(data: bytes) -> str:
    """The imageId the server derives when the client sends none.

    MD5 → standard Base64 with '+'→'-' and '/'→'_' is exactly the URL-safe alphabet, '==' padding
    kept: 24 characters, the original document's "24 bytes". MD5 is a content key here, not security.
    """
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def new_face_token() -> str:
    """A random, unguessable 24-character URL-safe faceToken."""
    return secrets.token_urlsafe(FACE_TOKEN_BYTES)


def valid_image_md5(value: str) -> bool:
    """Whether a client-supplied imageMd5 can be used as the imageId as given.

    1–32 characters from A-Z a-z 0-9 - _ = (all ASCII, so characters are bytes). The empty string is
    not valid: the caller derives the id from the image bytes instead.
    """
    return isinstance(value, str) and _IMAGE_ID_RE.fullmatch(value) is not None
