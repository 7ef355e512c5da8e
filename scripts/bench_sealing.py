#!/usr/bin/env python3
"""What sealing at rest costs: per blob, per enrolment, at start-up, for the migration and a rotation.

A synthetic library like scripts/bench_bundle.py's (N faces, dlib-sized random templates, a 1 KiB
"original" and a 512-byte "crop" each) is written twice: in plaintext at schema version 1 (what the
previous release wrote) and then converted by opening it (migration 2 seals every blob). Reported:

- seal/unseal of one template, crop and original (µs, median of 2000);
- enrolment: FaceStore.add_face, one transaction and fsync each, sealed (what the daemon does);
- start-up: building the index (attach_index: read + unseal N templates) against reading the same
  number of plaintext templates with the same loop;
- migration 2 of the plaintext library (one transaction), and `facegate key rotate` (resumable
  batches of security.rotate_batch rows).

Usage: scripts/bench_sealing.py WORKDIR [--faces 100000]. Figures go to docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.library import db
from daemon.library.index import TemplateIndex
from daemon.library.keys import KeyRing
from daemon.library.rotation import rotate
from daemon.library.store import FaceStore, open_keys
from daemon.library.types import Rect
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of

MODEL = model_id_of("int8")


def micro(ring: KeyRing) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(1)
    blobs = {
        "template (512 B)": rng.bytes(DESCRIPTOR_SIZE * 4),
        "crop (20 KiB)": rng.bytes(20 * 1024),
        "original (1 MiB)": rng.bytes(1024 * 1024),
    }
    out = {}
    for name, blob in blobs.items():
        seal, unseal = [], []
        for _ in range(2000 if len(blob) < 100_000 else 200):
            t0 = time.perf_counter()
            sealed = ring.seal(blob, "faces", "template", "token")
            t1 = time.perf_counter()
            ring.unseal(sealed, "faces", "template", "token")
            seal.append(t1 - t0)
            unseal.append(time.perf_counter() - t1)
        out[name] = (statistics.median(seal) * 1e6, statistics.median(unseal) * 1e6)
    return out


def plaintext_library(path: Path, count: int) -> float:
    """Schema version 1, plaintext blobs, as the previous release wrote them."""
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.migrate(conn, db.MIGRATIONS[:1])
    with db.transaction(conn):
        for i in range(count):
            row = conn.execute(
                "INSERT INTO images (image_id, original, kind, width, height, created)"
                " VALUES (?, ?, 'jpeg', 640, 480, 0)",
                (f"img-{i:07d}", rng.bytes(1024)),
            ).lastrowid
            template = (rng.standard_normal(DESCRIPTOR_SIZE) * 0.12).astype(np.float32)
            face = conn.execute(
                "INSERT INTO faces (face_token, image, rect_left, rect_top, rect_right, rect_bottom,"
                " crop_jpeg, template, model_id, created) VALUES (?, ?, 0, 0, 100, 100, ?, ?, ?, 0)",
                (f"tok-{i:07d}", row, rng.bytes(512), template.tobytes(), MODEL),
            ).lastrowid
            conn.execute("INSERT INTO bindings (face, grp) VALUES (?, 1)", (face,))
    conn.close()
    return time.perf_counter() - started


def read_templates(path: Path, ring: KeyRing | None) -> float:
    """The index build's read loop, with unsealing (``ring``) or without (the plaintext cost)."""
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    count = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
    matrix = np.empty((count, DESCRIPTOR_SIZE), np.float32)
    rows = conn.execute("SELECT face_token, template FROM faces ORDER BY id")
    for n, (token, blob) in enumerate(rows):
        plain = blob if ring is None else ring.unseal(blob, "faces", "template", token)
        matrix[n] = np.frombuffer(plain, np.float32)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def enrolments(store: FaceStore, count: int) -> float:
    rng = np.random.default_rng(3)
    started = time.perf_counter()
    for i in range(count):
        store.add_face(
            image_id=f"enrol-{i}",
            original=rng.bytes(200 * 1024),
            kind="jpeg",
            width=640,
            height=480,
            description="",
            name="",
            gender="",
            rect=Rect(0, 0, 100, 100),
            crop_jpeg=rng.bytes(20 * 1024),
            template=(rng.standard_normal(DESCRIPTOR_SIZE) * 0.12).astype(np.float32),
            model_id=MODEL,
            quality=0.9,
        )
    return (time.perf_counter() - started) / count


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path, key_path = args.workdir / "library.sqlite3", args.workdir / "library.keys"
    for stale in (path, key_path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    print(f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"plaintext library of {args.faces} faces written in {plaintext_library(path, args.faces):.1f} s")
    plain_read = read_templates(path, None)
    started = time.perf_counter()
    ring = open_keys(path, key_path)
    store = FaceStore(path, ring)
    migration = time.perf_counter() - started
    store.close()
    print(f"migration 2 (seal every blob, one transaction, then WAL scrub): {migration:.1f} s")
    for name, (seal, unseal) in micro(ring).items():
        print(f"{name}: seal {seal:.1f} µs, unseal {unseal:.1f} µs")
    with FaceStore(path, ring) as store:
        started = time.perf_counter()
        loaded = store.attach_index(TemplateIndex(DESCRIPTOR_SIZE), MODEL)
        build = time.perf_counter() - started
        sealed_read = read_templates(path, ring)
        print(f"start-up index build (attach_index), {loaded} sealed templates: {build:.2f} s")
        print(f"  its read loop: {sealed_read:.2f} s sealed, {plain_read:.2f} s plaintext (before migration)")
        per = enrolments(store, 200)
        print(f"enrolment (add_face, 200 KiB original + 20 KiB crop + template, fsync): {per * 1000:.1f} ms")
    started = time.perf_counter()
    result = rotate(path, key_path, args.batch)
    elapsed = time.perf_counter() - started
    print(f"key rotate, batch {args.batch}: {result.rows_resealed} rows in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
