"""Consistent copies of the library file while the daemon writes to it.

``backup`` uses SQLite's online backup API from a connection of its own: in WAL mode the copy is one
read transaction (a snapshot), so the daemon keeps writing meanwhile and the copy is never torn. The
copy goes to a temporary file next to the target, is checked (``PRAGMA quick_check``), fsynced and
renamed into place, so OUT is either the old file or a complete new one. ``snapshot`` opens a
read-only connection for exports.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from daemon.library.errors import LibraryError
from daemon.ops.private_files import fsync_dir


class BackupError(LibraryError):
    """The backup could not be made (source missing or unreadable, target not writable, check failed)."""


def backup(source: Path, target: Path, busy_timeout: float = 30.0) -> int:
    """Copy the library at ``source`` to ``target`` (mode 0600); the number of bytes written."""
    if not source.is_file():
        raise BackupError(f"no library at {source}")
    if target.exists() and target.is_dir():
        target = target / source.name
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        with (
            contextlib.closing(_readonly(source, busy_timeout)) as src,
            contextlib.closing(sqlite3.connect(str(tmp), isolation_level=None)) as dst,
        ):
            src.backup(dst)  # pages=-1: one step, one read transaction: a consistent snapshot
            dst.execute("PRAGMA journal_mode = DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except (OSError, sqlite3.Error) as exc:
        raise BackupError(f"backup of {source} to {target} failed: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target.stat().st_size


@contextlib.contextmanager
def snapshot(path: Path, busy_timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A read-only connection inside one read transaction: everything it reads is one point in time."""
    if not path.is_file():
        raise BackupError(f"no library at {path}")
    conn = _readonly(path, busy_timeout)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # starts the read transaction
        yield conn
    finally:
        conn.close()


def _readonly(path: Path, busy_timeout: float) -> sqlite3.Connection:
    uri = f"file:{path.resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    return conn
