"""Where asynchronous tasks live between requests and across restarts: one SQLite file of their own.

A separate file from the face library on purpose: tasks are transient bookkeeping (deleted after
tasks.keep_hours), the library is the device's precious state, and neither should lock the other.
Uploads and results are files next to it (uploads/, results/); a row names its files relative to the
task directory. Thread-safe (one connection behind a lock): the event loop calls it through an
executor, the task workers call it from their threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from daemon.fsmodes import private_sqlite

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUSES = (QUEUED, RUNNING, DONE, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    upload TEXT,
    result TEXT,
    original_name TEXT NOT NULL DEFAULT '',
    principal TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL DEFAULT '{}',
    restarts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, created_at);
"""


@dataclass(frozen=True)
class TaskRecord:
    id: str
    kind: str
    status: str
    created_at: float  # wall-clock seconds (time.time()): must survive a restart
    started_at: float | None = None
    finished_at: float | None = None
    frames_done: int = 0
    frames_total: int = 0
    error: str | None = None
    upload: str | None = None  # relative to the task directory
    result: str | None = None
    original_name: str = ""
    principal: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0  # times processing started over (shutdown or crash)
    crashes: int = 0  # of which the daemon died while running it (counts towards max_attempts)

    def evolve(self, **changes: Any) -> TaskRecord:
        return replace(self, **changes)


class TaskStore:
    def __init__(self, path: Path) -> None:
        private_sqlite(path)  # 0600, and so its -wal and -shm
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, record: TaskRecord) -> None:
        """Insert or replace the whole record (the row is small; callers hold the newest copy)."""
        values = asdict(record)
        values["options"] = json.dumps(record.options)
        names = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        with self._lock:
            self._db.execute(f"INSERT OR REPLACE INTO tasks ({names}) VALUES ({marks})", values)

    def get(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _record(row) if row else None

    def with_status(self, statuses: Iterable[str]) -> list[TaskRecord]:
        wanted = list(statuses)
        marks = ", ".join("?" for _ in wanted)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM tasks WHERE status IN ({marks}) ORDER BY created_at, id", wanted
            ).fetchall()
        return [_record(row) for row in rows]

    def finished_before(self, cutoff: float) -> list[TaskRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE status IN ('done', 'failed') AND finished_at < ?", (cutoff,)
            ).fetchall()
        return [_record(row) for row in rows]

    def all_files(self) -> set[str]:
        """Every upload and result path a row still refers to."""
        with self._lock:
            rows = self._db.execute("SELECT upload, result FROM tasks").fetchall()
        return {name for row in rows for name in row if name}

    def delete(self, task_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))


def _record(row: sqlite3.Row) -> TaskRecord:
    values = dict(row)
    values["options"] = json.loads(values["options"] or "{}")
    return TaskRecord(**values)
