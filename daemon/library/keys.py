"""The library key ring: where the at-rest keys live, how they are loaded, created and rotated.

All key handling is here (daemon/library/sealing.py is the crypto). The keys never enter the database.

Where: ``security.key_file`` when set; else ``$CREDENTIALS_DIRECTORY/facegate-library-keys`` when
systemd passes that credential (``LoadCredential=``/``LoadCredentialEncrypted=``; read-only); else
``<state_dir>/library.keys``, created with one random key (mode 0600) the first time a library
without sealed data is opened.

Format: text, one key per line, ``<id>:<64 hex digits>`` (``#`` comments). The *last* line is the
current key (new blobs are sealed with it); earlier lines are keys a rotation has not finished
retiring. Files are replaced atomically (temporary file, fsync, rename, fsync of the directory).

The running daemon and ``facegate key rotate`` share the file: before sealing, and when a blob names a
key id it does not know, the ring checks whether the file changed (inode, size, mtime) and re-reads
it, so a rotation run next to the daemon makes the daemon seal with the new key at its next write.
Keys read once stay known to the process, so a row re-sealed meanwhile is readable either way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from daemon.library import sealing
from daemon.library.errors import LibraryError
from daemon.ops.private_files import write_private

FILE_NAME = "library.keys"
CREDENTIAL_NAME = "facegate-library-keys"


class KeyRingError(LibraryError):
    """The key file is missing (while the library holds sealed data), unreadable or malformed."""


def resolve_key_path(configured: str, state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the key ring is (see the module docstring)."""
    if configured:
        return Path(configured)
    env = os.environ if environ is None else environ
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_NAME).is_file():
        return Path(credentials) / CREDENTIAL_NAME
    return state_dir / FILE_NAME


class KeyRing:
    """Thread-safe: the library thread, the export thread and a rotation may use one ring."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ciphers: dict[int, sealing.AESGCM] = {}
        self._current = 0
        self._stamp: tuple[int, int, int] | None = None
        self._reload()

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, may_create: bool) -> KeyRing:
        """The ring at ``path``; a missing file is created with one new key only if ``may_create``
        (the library holds no sealed data yet), otherwise refused: a new key could read nothing."""
        if not path.exists():
            if not may_create:
                raise KeyRingError(
                    f"no library key file at {path}, but the library holds encrypted data: restore the "
                    "key file from your backup (or set security.key_file)"
                )
            write_keys(path, [(1, sealing.new_key())], exclusive=True)
        return cls(path)

    @property
    def current_id(self) -> int:
        self.refresh()
        return self._current

    @property
    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._ciphers)

    def refresh(self) -> None:
        """Re-read the file if it changed since the last read (one stat)."""
        with self._lock:
            if self._file_stamp() != self._stamp:
                self._reload_locked()

    def _reload(self) -> None:
        with self._lock:
            self._reload_locked()

    def _reload_locked(self) -> None:
        stamp = self._file_stamp()
        keys = read_keys(self.path)
        for key_id, key in keys:
            self._ciphers.setdefault(key_id, sealing.cipher(key))
        self._current = keys[-1][0]
        self._stamp = stamp

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    # -- sealing ----------------------------------------------------------------------------------

    def seal(self, plaintext: bytes, table: str, column: str, row_key: str) -> bytes:
        self.refresh()
        with self._lock:
            key_id = self._current
            key = self._ciphers[key_id]
        return sealing.seal(key, key_id, plaintext, sealing.associated_data(table, column, row_key))

    def unseal(self, blob: bytes, table: str, column: str, row_key: str) -> bytes:
        """The plaintext of a stored blob; SealedBlobCorrupt when it is not sealed, altered or
        moved from another row; KeyRingError when its key is not in the file."""
        where = f"{table}.{column} of {row_key!r}"
        key_id = sealing.key_id_of(blob)
        if key_id is None:
            raise sealing.SealedBlobCorrupt(f"{where}: stored data is not sealed (corrupt or planted)")
        key = self._cipher(key_id)
        if key is None:
            self.refresh()
            key = self._cipher(key_id)
            if key is None:
                raise KeyRingError(f"{where} is sealed with key {key_id}, which is not in {self.path}")
        return sealing.unseal(key, blob, sealing.associated_data(table, column, row_key), where)

    def _cipher(self, key_id: int) -> sealing.AESGCM | None:
        return self._ciphers.get(key_id)  # entries are only ever added: a lock-free read is safe


# -- the file ----------------------------------------------------------------------------------------


def read_keys(path: Path) -> list[tuple[int, bytes]]:
    """(id, key) in file order; the last one is current."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyRingError(f"cannot read library key file {path}: {exc}") from exc
    keys: list[tuple[int, bytes]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        ident, _, hexkey = line.partition(":")
        try:
            key_id, key = int(ident), bytes.fromhex(hexkey.strip())
        except ValueError:
            raise KeyRingError(f"{path}:{number}: expected '<id>:<64 hex digits>'") from None
        if len(key) != sealing.KEY_BYTES or not 0 < key_id < 2**32:
            raise KeyRingError(f"{path}:{number}: a key is {sealing.KEY_BYTES} bytes with an id 1..2^32-1")
        if any(key_id == known for known, _ in keys):
            raise KeyRingError(f"{path}:{number}: key id {key_id} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise KeyRingError(f"library key file {path} holds no key")
    return keys


def write_keys(path: Path, keys: list[tuple[int, bytes]], exclusive: bool = False) -> None:
    """Replace (or, ``exclusive``, create) the key file atomically, mode 0600."""
    text = "# Facegate library keys (AES-256-GCM): <id>:<hex>; the last line is current. Keep secret.\n"
    text += "".join(f"{key_id}:{key.hex()}\n" for key_id, key in keys)
    try:
        write_private(path, text, exclusive=exclusive)
    except OSError as exc:
        raise KeyRingError(f"cannot write library key file {path}: {exc}") from exc


def add_key(path: Path) -> int:
    """Append a new random key, which becomes current; its id."""
    keys = read_keys(path)
    key_id = max(k for k, _ in keys) + 1
    write_keys(path, [*keys, (key_id, sealing.new_key())])
    return key_id


def keep_only_current(path: Path) -> list[int]:
    """Drop every key but the current one; the ids dropped."""
    keys = read_keys(path)
    write_keys(path, keys[-1:])
    return [k for k, _ in keys[:-1]]
