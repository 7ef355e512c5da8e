"""Free space on the state dir's filesystem, and what a full disk means for writes.

The daemon must degrade, not crash, when the SD card fills up: below ``ops.min_free_mb`` every
request that would write (enrol, group changes, uploads, imports) is refused with a clear error while
reads (search, compare, listing, the stream) keep working; and a write that still hits ENOSPC or
SQLITE_FULL is answered with the same error instead of a 500. The free space is measured on a thread
of its own every ``ops.disk_check_seconds`` (statvfs is a system call; nothing blocks the loop), and
the API reads the last measurement.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from daemon.errors import FacegateError

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL, the primary result code (extended codes keep it in the low byte)


class StorageFull(FacegateError):
    """A write was refused or failed because the state dir's filesystem is (nearly) full."""


def is_storage_full(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) is ENOSPC/EDQUOT or SQLite's "database or disk is full"."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, StorageFull):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == _SQLITE_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def free_bytes(path: Path) -> int:
    """Bytes available to an unprivileged writer on the filesystem holding ``path`` (or its parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


class DiskGuard:
    """The last measurement of free space against the floor; ``run`` keeps it fresh."""

    def __init__(self, path: Path, floor_mb: int, interval: float) -> None:
        self.path = Path(path)
        self.floor_bytes = int(floor_mb) * MIB
        self.interval = interval
        self._free: int | None = None
        self._measured_at = 0.0
        self._low_logged = False

    @property
    def low(self) -> bool:
        return self.floor_bytes > 0 and self._free is not None and self._free < self.floor_bytes

    def measure(self) -> int:
        """Measure now (blocking, fast); logs once when crossing the floor in either direction."""
        free = free_bytes(self.path)
        self._free, self._measured_at = free, time.time()
        if self.low and not self._low_logged:
            log.error(
                "disk nearly full: %.0f MiB free under %s, floor %d MiB: writes are refused until space "
                "is freed (reads keep working)",
                free / MIB,
                self.path,
                self.floor_bytes // MIB,
            )
            self._low_logged = True
        elif not self.low and self._low_logged:
            log.warning(
                "disk space recovered: %.0f MiB free under %s; writes accepted again", free / MIB, self.path
            )
            self._low_logged = False
        return free

    def refusal(self) -> str:
        free = 0 if self._free is None else self._free
        return (
            f"only {free / MIB:.0f} MiB free on the device's storage (floor {self.floor_bytes // MIB} MiB): "
            "free space (delete faces, task results, recordings) and retry"
        )

    async def run(self) -> None:
        """Measure every ``interval`` seconds on a dedicated thread until cancelled."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="facegate-disk")
        loop = asyncio.get_running_loop()
        failing = False
        try:
            while True:
                try:
                    await loop.run_in_executor(executor, self.measure)
                    failing = False
                except OSError as exc:
                    if not failing:  # once per outage, not every few seconds
                        log.warning("cannot measure free space under %s: %s", self.path, exc)
                    failing = True
                await asyncio.sleep(self.interval)
        finally:
            executor.shutdown(wait=False)

    def stats(self) -> dict[str, Any]:
        """For /health."""
        return {
            "free_mb": None if self._free is None else round(self._free / MIB, 1),
            "floor_mb": self.floor_bytes // MIB,
            "writes": "refused" if self.low else "accepted",
        }
