"""Secret files (token store, keys): written atomically with mode 0600, refused when others can read them."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from daemon.errors import ConfigError


def check_private(path: Path) -> None:
    """Refuse a secret file that its group or others can read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(f"{path} is mode {mode:04o}: others may read it; run 'chmod 600 {path}'")


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write text to path atomically with mode 0600, durably (the file and its directory entry are
    synced). ``exclusive``: create only; FileExistsError if the file appeared meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(temporary, path)
            temporary.unlink()
        else:
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` survive a power cut (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
