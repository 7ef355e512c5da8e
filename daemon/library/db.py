"""The SQLite file of the face library: connection settings, numbered migrations, transactions.

One file holds originals, crops, templates, groups and bindings, so one transaction covers a whole
registration and a backup is one file. Settings and why:

- WAL: readers (a backup, the CLI) never block the daemon's writes and vice versa.
- synchronous=FULL: a registration that was answered "SUCCESS" survives a power cut (WAL with
  NORMAL may lose the last commits; a door appliance gets its plug pulled).
- foreign_keys=ON: bindings and faces disappear with what they point to (ON DELETE CASCADE).
- secure_delete=ON: deleted templates, crops and originals are overwritten, not left readable in
  free pages (biometric data; the privacy promise of "delete").
- auto_vacuum=INCREMENTAL (fresh files only): pages freed by deletions can be returned to the OS.
- busy_timeout: another process holding the write lock (a backup tool) makes us wait, not fail.

The schema version is PRAGMA user_version; migrations are an ordered list of SQL scripts (or Python
functions, for data conversions), each applied in one transaction together with its version bump.

At rest, originals, crops and templates are sealed (AES-256-GCM, daemon/library/sealing.py) with the
key ring of daemon/library/keys.py; migration 2 seals the blobs of a library written before. The file
is created 0600 (SQLite gives -wal and -shm the same mode). ``scrub`` (after deletions and after
migration 2) checkpoints the WAL and truncates it: with secure_delete, the bytes of a deleted row are
then gone from the main file, the WAL and the shm file.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from daemon.fsmodes import private_sqlite
from daemon.library.keys import KeyRing
from daemon.library.reseal import seal_plaintext_library

log = logging.getLogger(__name__)
Migration = str | Callable[[sqlite3.Connection, KeyRing], object]

# MIGRATIONS[i] brings the schema from version i to version i + 1. Never edit a released script:
# append a new one.
MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE images (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id    TEXT    NOT NULL UNIQUE,
        original    BLOB    NOT NULL,
        kind        TEXT    NOT NULL,
        width       INTEGER NOT NULL,
        height      INTEGER NOT NULL,
        description TEXT    NOT NULL DEFAULT '',
        name        TEXT    NOT NULL DEFAULT '',
        gender      TEXT    NOT NULL DEFAULT '',
        created     REAL    NOT NULL
    );
    CREATE TABLE faces (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        face_token  TEXT    NOT NULL UNIQUE,
        image       INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        rect_left   INTEGER NOT NULL,
        rect_top    INTEGER NOT NULL,
        rect_right  INTEGER NOT NULL,
        rect_bottom INTEGER NOT NULL,
        crop_jpeg   BLOB    NOT NULL,
        template    BLOB    NOT NULL CHECK (length(template) > 0 AND length(template) % 4 = 0),
        model_id    TEXT    NOT NULL,
        quality     REAL,
        created     REAL    NOT NULL
    );
    CREATE INDEX faces_by_image ON faces(image);
    CREATE INDEX faces_by_model ON faces(model_id);
    CREATE TABLE groups (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id    TEXT    NOT NULL UNIQUE,
        name        TEXT    NOT NULL UNIQUE,
        type        TEXT    NOT NULL DEFAULT '',
        score       INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
        slot        INTEGER NOT NULL UNIQUE CHECK (slot BETWEEN 0 AND 63),
        created     REAL    NOT NULL
    );
    CREATE TABLE bindings (
        face        INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        grp         INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        PRIMARY KEY (face, grp)
    ) WITHOUT ROWID;
    CREATE INDEX bindings_by_group ON bindings(grp, face);
    INSERT INTO groups (group_id, name, type, score, slot, created)
        VALUES ('default', 'default', '', 80, 0, CAST(strftime('%s', 'now') AS REAL));
    """,
    # 2: seal every original, crop and template written in plaintext (issue #11). One transaction: a
    # crash leaves the library as it was; the plaintext left in the WAL is scrubbed after it commits.
    seal_plaintext_library,
)
SEALING_VERSION = 2  # from this version on, every blob of the file is sealed

SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: str | Path, keys: KeyRing | None, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """Open (creating if needed, mode 0600) the library file with the settings above and migrate it
    (``keys`` seals a plaintext library; None only for files already at the current version).

    The connection is in autocommit mode (isolation_level=None): transactions are explicit, see
    ``transaction``. check_same_thread=False because the store uses it from worker threads under
    its own lock.
    """
    private_sqlite(Path(path))
    conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if _user_version(conn) == 0 and not _has_tables(conn):
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before any table
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch {path} to WAL (journal_mode={mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        before = _user_version(conn)
        migrate(conn, keys=keys)
        if before and before < SEALING_VERSION:
            scrub(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(
    conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS, keys: KeyRing | None = None
) -> int:
    """Apply the migrations the file has not seen yet, each in its own transaction.

    Returns the resulting schema version. A file newer than this code is refused rather than
    misread.
    """
    version = _user_version(conn)
    if version > len(migrations):
        raise sqlite3.DatabaseError(
            f"library schema version {version} is newer than this daemon knows ({len(migrations)})"
        )
    for number in range(version, len(migrations)):
        with transaction(conn):
            # executescript would COMMIT the open transaction first: run the statements one by
            # one instead, so the script and its version bump commit together or not at all.
            step = migrations[number]
            if isinstance(step, str):
                for statement in _split_statements(step):
                    conn.execute(statement)
            elif keys is None:
                raise ValueError(f"migration {number + 1} converts data and needs the library key ring")
            else:
                step(conn, keys)
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return _user_version(conn)


def scrub(conn: sqlite3.Connection) -> bool:
    """Return freed pages to the filesystem and fold the WAL into the main file, truncating it.

    With secure_delete the freed pages were zeroed; after this the old versions of changed pages are
    gone from the WAL too. Waits (busy_timeout) for readers of older snapshots; False when one still
    held the WAL (a long backup), in which case the next scrub retries.
    """
    try:
        conn.execute("PRAGMA incremental_vacuum").fetchall()
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:  # e.g. another process holds the write lock
        log.warning("could not checkpoint the library WAL: %s", exc)
        return False
    if busy:
        log.warning("a reader kept the library WAL from being truncated; it is retried after the next write")
    return not busy


def schema_version(path: Path) -> int:
    """PRAGMA user_version of an existing file, read-only (0 for a missing or empty file)."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    try:
        return _user_version(conn)
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (including a failed COMMIT).

    IMMEDIATE takes the write lock up front, so checks made inside (does this imageId exist?) stay
    true until the commit, even against another process.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None


def _split_statements(script: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3.complete_statement aware)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending.strip()[:60]!r}")
    return statements
