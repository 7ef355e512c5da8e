"""Which columns are sealed, and the pass that (re-)seals them: the plaintext migration and rotation.

Every sealed blob is bound to its row by a key that never changes: ``images.image_id`` for originals,
``faces.face_token`` for crops and templates (both known before the INSERT, so a row is written sealed
in one statement).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from daemon.library import sealing
from daemon.library.keys import KeyRing

# (table, column, the column whose value binds the blob to its row)
SEALED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("images", "original", "image_id"),
    ("faces", "crop_jpeg", "face_token"),
    ("faces", "template", "face_token"),
)


@dataclass
class PassState:
    """Where a resumable pass is: the next table (index into SEALED_COLUMNS' tables) and row id."""

    table: int = 0
    after: int = 0
    resealed: int = 0
    done: bool = False


_TABLES = ("images", "faces")


def reseal_step(
    conn: sqlite3.Connection, ring: KeyRing, state: PassState, limit: int, accept_plaintext: bool
) -> PassState:
    """Read up to ``limit`` rows after ``state`` and re-seal, with the current key, every blob of them
    that is sealed with another key (or, with ``accept_plaintext``, not sealed at all: the migration of
    a plaintext library). Runs inside the caller's transaction. Rows are read in id order, so a pass
    is one read of the library however many steps it takes."""
    if state.done:
        return state
    table = _TABLES[state.table]
    columns = [(column, key) for t, column, key in SEALED_COLUMNS if t == table]
    key_column = columns[0][1]
    names = ", ".join(column for column, _ in columns)
    rows = conn.execute(
        f"SELECT id, {key_column}, {names} FROM {table} WHERE id > ? ORDER BY id LIMIT ?",
        (state.after, limit),
    ).fetchall()
    current = ring.current_id
    for row in rows:
        row_id, row_key, blobs = row[0], row[1], row[2:]
        changes: dict[str, bytes] = {}
        for (column, _), blob in zip(columns, blobs, strict=True):
            key_id = sealing.key_id_of(blob)
            if key_id == current:
                continue
            if key_id is None and accept_plaintext:
                plain = bytes(blob)
            else:
                plain = ring.unseal(blob, table, column, row_key)  # refuses plaintext and forgeries
            changes[column] = ring.seal(plain, table, column, row_key)
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), row_id))
            state.resealed += 1
        state.after = row_id
    if len(rows) < limit:
        state.table, state.after = state.table + 1, 0
        state.done = state.table >= len(_TABLES)
    return state


def seal_plaintext_library(conn: sqlite3.Connection, ring: KeyRing) -> int:
    """The migration to sealed storage: every plaintext blob sealed, in the caller's transaction."""
    state = PassState()
    while not state.done:
        reseal_step(conn, ring, state, 1000, accept_plaintext=True)
    return state.resealed


def rows_not_on_key(conn: sqlite3.Connection, key_id: int) -> int:
    """How many sealed values are not sealed with ``key_id`` (reads every blob's first 8 bytes)."""
    head = sealing.prefix(key_id)
    total = 0
    for table, column, _ in SEALED_COLUMNS:
        total += conn.execute(
            f"SELECT count(*) FROM {table} WHERE substr({column}, 1, {len(head)}) != ?", (head,)
        ).fetchone()[0]
    return int(total)
