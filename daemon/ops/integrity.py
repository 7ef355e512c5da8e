"""Start-up integrity of the stored data: run before the app is built (daemon/serve.py).

- The face library: a corrupt file, or one that is not SQLite, stops the start with IntegrityError
  (exit status 5, EXIT_INTEGRITY, docs/OPERATIONS.md) naming the file and the first problem
  ``PRAGMA quick_check`` reports. A library that existed and is now missing (a marker in the state
  dir, written once the library has been opened, says so) stops the start too: never serve a
  silently empty library. The operator restores a backup, or deletes the marker to start empty.
- The task database holds only transient jobs: a corrupt one is moved aside (``.corrupt-<time>``) with
  an error logged, and a fresh one is created: the daemon keeps serving.

quick_check runs within limits.integrity_check_seconds (a progress handler interrupts it beyond, with a
warning: a very large library on a slow card is not refused for being large).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from daemon.config import Config
from daemon.errors import IntegrityError

log = logging.getLogger("facegate.integrity")

MARKER_NAME = "library.exists"


class _TimedOut(Exception):
    pass


def quick_check(path: Path, budget_seconds: float) -> str | None:
    """None when the file passes (or the check ran out of time), else the first problem found."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return str(exc)
    deadline = time.monotonic() + budget_seconds
    timed_out = False

    def progress() -> int:
        nonlocal timed_out
        timed_out = time.monotonic() > deadline
        return 1 if timed_out else 0  # non-zero interrupts the statement

    try:
        if budget_seconds > 0:
            conn.set_progress_handler(progress, 10_000)
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.Error as exc:
        if timed_out:
            log.warning("%s: quick_check did not finish within %.0f s; not checked", path, budget_seconds)
            return None
        return str(exc)
    finally:
        conn.close()
    first = str(rows[0][0]) if rows else "no answer"
    return None if first == "ok" else first


def marker_path(config: Config) -> Path:
    return config.state_path / MARKER_NAME


def check_library(config: Config) -> None:
    """IntegrityError when the library is missing although one existed, or is corrupt."""
    path, marker = config.database_path, marker_path(config)
    if not path.exists():
        if marker.exists():
            raise IntegrityError(
                f"the face library {path} is missing, but {marker} records that one existed: restore it "
                f"from a backup, or delete {marker} to start with an empty library (docs/OPERATIONS.md)"
            )
        return
    if config.limits.integrity_check_seconds <= 0:
        return
    problem = quick_check(path, config.limits.integrity_check_seconds)
    if problem is not None:
        raise IntegrityError(
            f"the face library {path} is corrupt ({problem}): stop, copy it aside, and restore a backup "
            "or recover it (docs/OPERATIONS.md, A corrupt library)"
        )


def mark_library(config: Config) -> None:
    """Record that the library exists (after it has been opened): its disappearance is then an error."""
    marker = marker_path(config)
    if not marker.exists():
        marker.write_text(f"{config.database_path.resolve()}\n", encoding="utf-8")


def check_tasks(config: Config) -> None:
    """Move a corrupt task database aside: tasks are transient, the daemon starts with a fresh one."""
    directory = config.tasks_path
    path = directory / "tasks.sqlite3"
    if not path.exists() or config.limits.integrity_check_seconds <= 0:
        return
    problem = quick_check(path, config.limits.integrity_check_seconds)
    if problem is None:
        return
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        extra = Path(f"{path}{suffix}")
        if extra.exists():
            extra.rename(Path(f"{aside}{suffix}"))
    log.error(
        "the task database %s is corrupt (%s): moved to %s, starting with no tasks "
        "(queued and finished tasks are lost; their files are swept)",
        path,
        problem,
        aside,
    )


def check_stored_data(config: Config) -> None:
    check_library(config)
    check_tasks(config)
