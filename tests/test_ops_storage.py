"""Storage edge cases with real files: a backup taken while another connection writes, and what counts
as "the disk is full" (a real ENOSPC from /dev/full, a real SQLITE_FULL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import open_library

from daemon.library.backup import backup
from daemon.library.store import FaceStore
from daemon.services.disk import StorageFull, is_storage_full
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of


def _add(store: FaceStore, i: int) -> None:
    template = np.full(DESCRIPTOR_SIZE, 0.01 * (i + 1), dtype=np.float32)
    store.add_face(
        f"img{i}",
        b"x" * 2048,
        "jpeg",
        8,
        8,
        "",
        f"n{i}",
        "",
        (0, 0, 4, 4),
        b"c" * 256,
        template,
        model_id_of("int8"),
        None,
        ["default", "g"],
    )


def test_backups_taken_during_writes_are_consistent_snapshots(tmp_path: Path):
    db = tmp_path / "library.sqlite3"
    with open_library(db) as store:
        store.create_group("g", "g", "", 80)
    stop = threading.Event()
    written = []

    def writer() -> None:
        with open_library(db) as store:  # another connection, like the running daemon
            i = 0
            while not stop.is_set() and i < 5000:
                _add(store, i)
                written.append(i)
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    counts = []
    try:
        for n in range(5):
            seen = len(written)
            _wait_until(lambda seen=seen: len(written) >= seen + 10 or not thread.is_alive())
            out = tmp_path / f"copy{n}.sqlite3"
            backup(db, out)
            with sqlite3.connect(out) as copy:
                assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                faces = copy.execute("SELECT count(*) FROM faces").fetchone()[0]
                images = copy.execute("SELECT count(*) FROM images").fetchone()[0]
                bindings = copy.execute("SELECT count(*) FROM bindings").fetchone()[0]
            # One registration is one transaction: a snapshot never holds half of one.
            assert faces == images and bindings == 2 * faces
            counts.append(faces)
    finally:
        stop.set()
        thread.join(60)
    assert counts == sorted(counts) and counts[0] > 0 and counts[-1] > counts[0]


def _wait_until(condition, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_real_enospc_and_a_real_sqlite_full_count_as_storage_full(tmp_path: Path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with pytest.raises(OSError) as enospc, open("/dev/full", "wb") as f:
        f.write(b"x" * 4096)
        f.flush()
    assert is_storage_full(enospc.value)
    conn = sqlite3.connect(tmp_path / "small.sqlite3")
    conn.execute("CREATE TABLE t (b BLOB)")
    conn.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        conn.execute("INSERT INTO t VALUES (zeroblob(100000))")
    conn.close()
    assert is_storage_full(full.value)
    try:
        raise StorageFull("x") from full.value
    except StorageFull as wrapped:
        assert is_storage_full(wrapped)
    assert not is_storage_full(sqlite3.OperationalError("database is locked"))
    assert not is_storage_full(PermissionError(13, "denied"))
