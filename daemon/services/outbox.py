"""The durable outbox of door events: one row per (sink, event) until that sink has the event.

The outbox lives in the events database (``<state_dir>/events.sqlite3``), beside the events table.
``Outbox.enqueue`` is an in-transaction hook of the events store: it runs inside the transaction that
inserts the event, so an event is queued for delivery if and only if it is committed (a kill -9 before
the COMMIT leaves neither). The dispatcher (services/dispatcher.py) reads and deletes rows through its
own connection (``OutboxStore``) on its own thread.

Bounds: at most ``max_rows`` undelivered rows per sink. Enqueueing beyond that deletes that sink's
oldest rows first, counts them (``outbox_dropped``, persistent) and logs a rate-limited line; it never
blocks and never fails the event's transaction for want of room.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.fsmodes import private_sqlite
from daemon.ops.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

#: Idempotent DDL; the events store may run it inside its own migrations, the dispatcher runs it at start.
OUTBOX_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        sink        TEXT    NOT NULL,
        event_id    INTEGER NOT NULL,
        payload     TEXT    NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT    NOT NULL DEFAULT '',
        created     REAL    NOT NULL,
        UNIQUE (sink, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_by_sink ON outbox(sink, id)",
    """CREATE TABLE IF NOT EXISTS outbox_dropped (
        sink        TEXT    PRIMARY KEY,
        dropped     INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID""",
)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the outbox tables if missing (safe inside or outside a transaction)."""
    for statement in OUTBOX_SCHEMA:
        conn.execute(statement)


class Outbox:
    """The in-transaction hook: queue a committed-to-be event for every durable sink.

    ``sinks`` are the names of the durable sinks (stable across restarts: rows are keyed by them).
    """

    def __init__(self, sinks: Sequence[str], max_rows: int) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.sinks = tuple(sinks)
        self.max_rows = max_rows
        self._warn = RateLimitedLog(log)

    def enqueue(self, conn: sqlite3.Connection, event_id: int, event: dict[str, Any]) -> None:
        """Hook signature of the events store: ``(connection, event id, event dict)``.

        Runs inside the caller's open transaction and never commits. The stored payload is the
        event with its ``id``.
        """
        if not self.sinks:
            return
        payload = json.dumps({**event, "id": int(event_id)}, separators=(",", ":"), ensure_ascii=False)
        try:
            self._insert(conn, int(event_id), payload)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            # The events store did not create the outbox (yet): DDL is transactional in SQLite, so
            # creating it here commits or rolls back with the event.
            create_schema(conn)
            self._insert(conn, int(event_id), payload)

    def _insert(self, conn: sqlite3.Connection, event_id: int, payload: str) -> None:
        now = time.time()
        for sink in self.sinks:
            conn.execute(
                "INSERT OR IGNORE INTO outbox (sink, event_id, payload, created) VALUES (?, ?, ?, ?)",
                (sink, event_id, payload, now),
            )
            self._trim(conn, sink)

    def _trim(self, conn: sqlite3.Connection, sink: str) -> None:
        (count,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE sink = ?", (sink,)).fetchone()
        excess = count - self.max_rows
        if excess <= 0:
            return
        conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sink = ? ORDER BY id LIMIT ?)",
            (sink, excess),
        )
        conn.execute(
            "INSERT INTO outbox_dropped (sink, dropped) VALUES (?, ?) "
            "ON CONFLICT (sink) DO UPDATE SET dropped = dropped + excluded.dropped",
            (sink, excess),
        )
        self._warn.warning(
            f"full:{sink}",
            "outbox of %s is full (%d events): dropped the oldest undelivered event(s)",
            sink,
            self.max_rows,
        )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    event_id: int
    event: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class SinkCounts:
    pending: int = 0
    dropped: int = 0


class OutboxStore:
    """The dispatcher's own connection to the events database. Not thread-safe: one thread uses it."""

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        private_sqlite(self.path)  # 0600, and so its -wal and -shm
        conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            create_schema(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def due(self, sink: str, limit: int) -> list[OutboxRow]:
        """The oldest undelivered rows of a sink, in commit order."""
        rows = self._conn.execute(
            "SELECT id, event_id, payload, attempts FROM outbox WHERE sink = ? ORDER BY id LIMIT ?",
            (sink, limit),
        ).fetchall()
        return [OutboxRow(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def delivered(self, row_id: int) -> None:
        self._conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def failed(self, row_id: int, error: str) -> None:
        self._conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error[:500], row_id)
        )

    def forget_sinks_except(self, keep: Iterable[str]) -> int:
        """Delete the rows of sinks no longer configured; returns how many went."""
        names = list(keep)
        marks = ",".join("?" * len(names)) or "NULL"
        cursor = self._conn.execute(f"DELETE FROM outbox WHERE sink NOT IN ({marks})", names)
        return cursor.rowcount

    def counts(self) -> dict[str, SinkCounts]:
        pending = dict(self._conn.execute("SELECT sink, COUNT(*) FROM outbox GROUP BY sink").fetchall())
        dropped = dict(self._conn.execute("SELECT sink, dropped FROM outbox_dropped").fetchall())
        return {s: SinkCounts(pending.get(s, 0), dropped.get(s, 0)) for s in set(pending) | set(dropped)}

    def close(self) -> None:
        self._conn.close()
