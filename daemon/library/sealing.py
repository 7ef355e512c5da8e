"""AES-256-GCM sealing of one BLOB, bound to the row and column it is stored in.

Format of a sealed blob (36 bytes more than the plaintext, a multiple of 4, so a sealed template still
passes the schema's ``length(template) % 4 = 0`` check)::

    b"FGS\\x01" | key id (uint32, big-endian) | nonce (12 random bytes) | ciphertext | tag (16 bytes)

The associated data is ``facegate/<table>/<column>/<row key>`` plus the 8-byte prefix (magic and key
id): a blob copied into another row, another column or relabelled with another key id fails the tag
check and is refused as corrupt, never returned. Nonces are random (96 bits): with one key sealing at
most a few million blobs between rotations, a collision is out of reach (NIST SP 800-38D's 2^32 limit).

This module is the crypto only; which keys exist and where they live is daemon/library/keys.py.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as AESGCM  # re-exported: keys.py types with it

from daemon.library.errors import LibraryError

MAGIC = b"FGS\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
PREFIX_BYTES = len(MAGIC) + 4
OVERHEAD = PREFIX_BYTES + NONCE_BYTES + TAG_BYTES
KEY_BYTES = 32


class SealedBlobCorrupt(LibraryError):
    """A stored blob is not sealed, was altered, or belongs to another row or column."""


def prefix(key_id: int) -> bytes:
    """The first bytes of every blob sealed with ``key_id`` (rotation finds the others by it)."""
    return MAGIC + struct.pack(">I", key_id)


def key_id_of(blob: bytes) -> int | None:
    """The key id a blob was sealed with, or None when it is not a sealed blob (plaintext)."""
    if len(blob) < OVERHEAD or not blob.startswith(MAGIC):
        return None
    return int(struct.unpack_from(">I", blob, len(MAGIC))[0])


def associated_data(table: str, column: str, row_key: str) -> bytes:
    return f"facegate/{table}/{column}/{row_key}".encode()


def seal(key: AESGCM, key_id: int, plaintext: bytes, aad: bytes) -> bytes:
    head = prefix(key_id)
    nonce = os.urandom(NONCE_BYTES)
    return head + nonce + key.encrypt(nonce, bytes(plaintext), head + aad)


def unseal(key: AESGCM, blob: bytes, aad: bytes, where: str) -> bytes:
    """The plaintext, or SealedBlobCorrupt naming ``where`` (table, column, row)."""
    if len(blob) < OVERHEAD or blob[: len(MAGIC)] != MAGIC:
        raise SealedBlobCorrupt(f"{where}: stored data is not sealed (corrupt or planted)")
    nonce = blob[PREFIX_BYTES : PREFIX_BYTES + NONCE_BYTES]
    try:
        return key.decrypt(nonce, bytes(blob[PREFIX_BYTES + NONCE_BYTES :]), bytes(blob[:PREFIX_BYTES]) + aad)
    except InvalidTag:
        raise SealedBlobCorrupt(
            f"{where}: stored data fails its integrity check (altered, or moved from another row)"
        ) from None


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def cipher(key: bytes) -> AESGCM:
    return AESGCM(key)
