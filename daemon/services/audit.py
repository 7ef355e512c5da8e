"""The audit trail: who changed what, when, in a SQLite file of its own (``audit.sqlite3``, 0600).

One row per mutation: wall-clock time, principal (the token's name), request id (also in the request
log line and the ``X-Request-Id`` header), action (``face.enrol``, ``group.delete`` …), target
(``face:<token>``, ``group:<id>`` …), the HTTP status and the device code of the answer, and a short
JSON detail. Values are stored as given and returned as JSON, so no value can forge a record.

Durable: WAL with synchronous=FULL, and the HTTP answer waits for the commit. Retention: records older
than ``audit.keep_days`` and beyond the newest ``audit.max_records`` are deleted at start, every
``TRIM_EVERY`` records and hourly. Blocking SQLite calls run on a thread of their own (``AuditLog``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import pwd
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from daemon.config import Config
from daemon.fsmodes import private_sqlite

T = TypeVar("T")
TRIM_EVERY = 64
TRIM_SECONDS = 3600.0
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       REAL    NOT NULL,
    principal  TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    code       INTEGER,
    detail     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time);
"""


@dataclass(frozen=True)
class AuditRecord:
    id: int
    time: float
    principal: str
    request_id: str
    action: str
    target: str
    status: int
    code: int | None
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class AuditStore:
    """Thread-safe (one connection behind a lock)."""

    def __init__(self, path: Path, keep_days: float, max_records: int) -> None:
        self.path = path
        self.keep_days = keep_days
        self.max_records = max_records
        private_sqlite(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._since_trim = 0
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(
        self,
        *,
        action: str,
        target: str,
        principal: str,
        request_id: str = "",
        status: int = 0,
        code: int | None = None,
        detail: dict[str, Any] | None = None,
        when: float | None = None,
    ) -> int:
        with self._lock:
            row = self._db.execute(
                "INSERT INTO audit (time, principal, request_id, action, target, status, code, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time() if when is None else when,
                    principal,
                    request_id,
                    action,
                    target,
                    status,
                    code,
                    json.dumps(detail or {}, ensure_ascii=True, default=str),
                ),
            ).lastrowid
            self._since_trim += 1
            due = self._since_trim >= TRIM_EVERY
        if due:
            self.trim()
        assert row is not None
        return row

    def query(
        self,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditRecord]:
        """Newest first; ``before`` (a record id) pages further back."""
        clauses, args = [], []
        for clause, value in (("time >= ?", since), ("time < ?", until), ("id < ?", before)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, time, principal, request_id, action, target, status, code, detail FROM audit"
                f" {where} ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_record(*row) for row in rows]

    def trim(self, now: float | None = None) -> int:
        """Apply the retention limits; the number of records deleted."""
        deleted = 0
        with self._lock:
            self._since_trim = 0
            if self.keep_days > 0:
                cutoff = (time.time() if now is None else now) - self.keep_days * 86400
                deleted += self._db.execute("DELETE FROM audit WHERE time < ?", (cutoff,)).rowcount
            if self.max_records > 0:
                deleted += self._db.execute(
                    "DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.max_records,),
                ).rowcount
        return deleted


def _record(
    record_id: int,
    at: float,
    principal: str,
    request_id: str,
    action: str,
    target: str,
    status: int,
    code: int | None,
    detail: str | None,
) -> AuditRecord:
    """One row of the audit table (the columns query() selects, in order)."""
    return AuditRecord(
        record_id, at, principal, request_id, action, target, status, code, json.loads(detail or "{}")
    )


class AuditLog:
    """AuditStore for the event loop: its calls run on one thread of their own."""

    def __init__(self, path: Path, keep_days: float, max_records: int) -> None:
        self.path, self._keep_days, self._max_records = path, keep_days, max_records
        self._store: AuditStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._trimmer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="facegate-audit")
        self._store = await self._call(AuditStore, self.path, self._keep_days, self._max_records)
        await self._call(self._store.trim)
        self._trimmer = asyncio.create_task(self._trim_hourly(), name="audit-retention")

    async def close(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        if self._store is not None:
            await self._call(self._store.close)
            self._store = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def record(self, **fields: Any) -> int:
        return await self._call(self.store.record, **fields)

    async def query(self, **filters: Any) -> list[AuditRecord]:
        return await self._call(self.store.query, **filters)

    @property
    def store(self) -> AuditStore:
        if self._store is None:
            raise RuntimeError("the audit log is not open")
        return self._store

    async def _trim_hourly(self) -> None:
        while True:
            await asyncio.sleep(TRIM_SECONDS)
            await self._call(self.store.trim)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the audit log is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))


def record_offline(path: Path, keep_days: float, max_records: int, **fields: Any) -> int:
    """One record from a command-line tool (e.g. a token change), without a running daemon."""
    store = AuditStore(path, keep_days, max_records)
    try:
        return store.record(**fields)
    finally:
        store.close()


def record_cli(config: Config, action: str, target: str, detail: dict[str, Any]) -> int:
    """A command-line mutation (``facegate token add``, ``key rotate`` …), principal ``cli:<user>``."""
    user = pwd.getpwuid(os.geteuid()).pw_name if hasattr(os, "geteuid") else "?"
    return record_offline(
        config.audit_path,
        config.audit.keep_days,
        config.audit.max_records,
        action=action,
        target=target,
        principal=f"cli:{user}",
        request_id="cli",
        detail=detail,
    )
