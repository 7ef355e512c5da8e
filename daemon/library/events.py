"""The door's events: one SQLite file (``<state_dir>/events.sqlite3``), apart from the face library.

Why a file of its own: events are written continuously by the camera thread and pruned by age and
count, while the library changes rarely; separate files keep their write locks, WAL checkpoints and
backups independent. Settings: WAL, ``synchronous=FULL`` (an event reported to anyone survives a
power cut), ``secure_delete`` (snapshots are face crops), ``busy_timeout``.

Two hooks let other parts ride on an insert (docs/ARCHITECTURE.md, "Events and outputs"):

* transaction hooks ``hook(conn, event_id, event)`` run INSIDE the transaction that inserts the
  event, on the same connection (an outbox row for a webhook goes in with the event or not at all);
  a hook that raises rolls the event back;
* listeners ``listener(event)`` run after COMMIT returned (SSE fan-out, a relay pulse); a failing
  listener is logged and never undoes the event.

The event's wire shape is :func:`event_json`'s (camelCase), the same for the API, SSE and the hooks.
Thread-safe: one connection under a lock (any thread may call any method).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.fsmodes import private_sqlite

log = logging.getLogger(__name__)

Decision = str  # "granted" | "denied" | "unknown"
DECISIONS = ("granted", "denied", "unknown")
TxHook = Callable[[sqlite3.Connection, int, dict[str, Any]], None]
Listener = Callable[[dict[str, Any]], None]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        time            REAL    NOT NULL,
        camera          TEXT    NOT NULL,
        decision        TEXT    NOT NULL CHECK (decision IN ('granted', 'denied', 'unknown')),
        reason          TEXT    NOT NULL DEFAULT '',
        face_token      TEXT,
        name            TEXT,
        groups_json     TEXT    NOT NULL DEFAULT '[]',
        score           REAL,
        liveness_score  REAL,
        quality         REAL,
        track_id        INTEGER NOT NULL,
        has_snapshot    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX events_by_time ON events(time);
    CREATE INDEX events_by_token ON events(face_token);
    CREATE TABLE snapshots (
        event_id  INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
        jpeg      BLOB    NOT NULL
    );
    """,
)


@dataclass(frozen=True)
class NewEvent:
    """What the door decided, before it has an id."""

    time: float  # epoch seconds (video seconds for the offline tool)
    camera: str
    decision: Decision
    reason: str
    track_id: int
    face_token: str | None = None
    name: str | None = None
    groups: list[str] = field(default_factory=list)
    score: float | None = None
    liveness_score: float | None = None
    quality: float | None = None


@dataclass(frozen=True)
class EventFilter:
    since: float | None = None
    until: float | None = None
    decision: str | None = None
    face_token: str | None = None
    group: str | None = None


def event_json(event_id: int, e: NewEvent, snapshot: bool) -> dict[str, Any]:
    """The one JSON shape of an event (API, SSE, sinks)."""
    return {
        "id": event_id,
        "time": e.time,
        "camera": e.camera,
        "decision": e.decision,
        "reason": e.reason,
        "faceToken": e.face_token,
        "name": e.name,
        "groups": list(e.groups),
        "score": e.score,
        "livenessScore": e.liveness_score,
        "quality": e.quality,
        "trackId": e.track_id,
        "snapshot": snapshot,
    }


_COLUMNS = (
    "id, time, camera, decision, reason, face_token, name, groups_json, score, liveness_score, "
    "quality, track_id, has_snapshot"
)


def _row_json(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    (event_id, t, camera, decision, reason, token, name, groups, score, live, quality, track, snap) = row
    e = NewEvent(t, camera, decision, reason, track, token, name, json.loads(groups), score, live, quality)
    return event_json(event_id, e, bool(snap))


class EventStore:
    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        private_sqlite(self.path)  # 0600, and so its -wal and -shm (it holds face snapshots)
        conn = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")  # pruned face crops are overwritten, not left in free pages
        self._conn = conn
        self._lock = threading.RLock()
        self._hooks: list[TxHook] = []
        self._listeners: list[Listener] = []
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, len(MIGRATIONS)):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {number + 1}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- hooks -----------------------------------------------------------------------------------

    def add_transaction_hook(self, hook: TxHook) -> None:
        """``hook(conn, event_id, event)`` inside the inserting transaction (outboxes)."""
        self._hooks.append(hook)

    def add_listener(self, listener: Listener) -> None:
        """``listener(event)`` after the commit (SSE, relay pulses); must not block."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- writes ----------------------------------------------------------------------------------

    def insert(self, event: NewEvent, snapshot_jpeg: bytes | None = None) -> dict[str, Any]:
        """Insert one event (and its snapshot) in one transaction with the hooks; return its JSON."""
        if event.decision not in DECISIONS:
            raise ValueError(f"unknown decision {event.decision!r}")
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(
                    "INSERT INTO events (time, camera, decision, reason, face_token, name, groups_json,"
                    " score, liveness_score, quality, track_id, has_snapshot)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.time,
                        event.camera,
                        event.decision,
                        event.reason,
                        event.face_token,
                        event.name,
                        json.dumps(list(event.groups)),
                        event.score,
                        event.liveness_score,
                        event.quality,
                        event.track_id,
                        int(snapshot_jpeg is not None),
                    ),
                )
                event_id = int(cursor.lastrowid or 0)
                if snapshot_jpeg is not None:
                    conn.execute(
                        "INSERT INTO snapshots (event_id, jpeg) VALUES (?, ?)", (event_id, snapshot_jpeg)
                    )
                body = event_json(event_id, event, snapshot_jpeg is not None)
                for hook in self._hooks:
                    hook(conn, event_id, body)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        for listener in list(self._listeners):
            try:
                listener(body)
            except Exception:  # boundary: a broken listener must not undo or block an event
                log.exception("event listener %r failed", listener)
        return body

    def prune(self, keep_seconds: float, keep_count: int, now: float | None = None) -> int:
        """Delete events older than ``keep_seconds`` (0: no age limit) and beyond the newest
        ``keep_count``; returns how many went."""
        now = time.time() if now is None else now
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                removed = 0
                if keep_seconds > 0:
                    removed += conn.execute(
                        "DELETE FROM events WHERE time < ?", (now - keep_seconds,)
                    ).rowcount
                removed += conn.execute(
                    "DELETE FROM events WHERE id <= "
                    "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (keep_count,),
                ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return removed

    # -- reads -----------------------------------------------------------------------------------

    def query(self, flt: EventFilter, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(total matching, one page newest first)."""
        where, params = _where(flt)
        with self._lock:
            total = self._conn.execute(f"SELECT count(*) FROM events{where}", params).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return int(total), [_row_json(r) for r in rows]

    def after(self, event_id: int, limit: int) -> list[dict[str, Any]]:
        """Events with an id above ``event_id``, oldest first (SSE resume)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit)
            ).fetchall()
        return [_row_json(r) for r in rows]

    def get(self, event_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM events WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else _row_json(row)

    def snapshot(self, event_id: int) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT jpeg FROM snapshots WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])


def _where(flt: EventFilter) -> tuple[str, Sequence[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.since is not None:
        clauses.append("time >= ?")
        params.append(flt.since)
    if flt.until is not None:
        clauses.append("time < ?")
        params.append(flt.until)
    if flt.decision is not None:
        clauses.append("decision = ?")
        params.append(flt.decision)
    if flt.face_token is not None:
        clauses.append("face_token = ?")
        params.append(flt.face_token)
    if flt.group is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(groups_json) WHERE value = ?)")
        params.append(flt.group)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
