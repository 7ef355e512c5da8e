"""Private files and directories: the state dir is 0700, everything in it 0600, with or without systemd.

The unit sets ``UMask=0077``, but the daemon is also run by hand (``scripts/run``, a shell on the Pi),
where the umask is usually 0022. So the process sets a private umask at start (``private_umask``) and
every file holding biometric data, keys, tokens or audit records is also created with an explicit mode
(``private_file``): a library opened by a tool with another umask is still 0600. SQLite creates the
``-wal`` and ``-shm`` files with the mode of the database file, so pre-creating that file 0600 is
what keeps them private too (``private_sqlite`` also tightens them if they already exist).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077
SQLITE_SUFFIXES = ("-wal", "-shm", "-journal")


def private_umask() -> int:
    """Set the process umask to 0077; the previous one."""
    return os.umask(UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make ``path`` itself 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 when missing; make an existing one 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
    else:
        os.close(fd)
    return path


def private_sqlite(path: Path) -> Path:
    """Before opening a SQLite file: the file 0600 (so SQLite creates -wal/-shm 0600), and any
    existing -wal/-shm/-journal tightened to 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    private_file(path)
    for suffix in SQLITE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            _tighten(path.with_name(path.name + suffix), FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    """chmod to ``mode`` when the current mode is wider (a file we do not own is left alone)."""
    current = path.stat().st_mode & 0o777
    if current & ~mode:
        with contextlib.suppress(PermissionError):
            os.chmod(path, mode)
