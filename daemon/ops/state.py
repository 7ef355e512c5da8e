"""Is the state dir usable? Checked before `facegate run` starts (exit status 4 otherwise)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir_problem(path: Path) -> str | None:
    """None when ``path`` exists (or can be created) and is writable; otherwise what is wrong."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create the state dir {path}: {exc.strerror} (check server.state_dir and ownership)"
    if not path.is_dir():
        return f"the state dir {path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"the state dir {path} is not writable by uid {os.geteuid()} (chown it to the service user)"
    return None
