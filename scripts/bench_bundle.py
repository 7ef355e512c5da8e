#!/usr/bin/env python3
"""Benchmark library export/import (signed bundles) on a synthetic library: time and peak RSS.

The library is generated directly through the store (daemon.library.faces.add_face inside one
FaceStore.rewrite transaction), not through enrolment: N faces with random dlib-sized templates, a
synthetic 1 KiB "original" and 512-byte "crop" each (the store does not decode them), bound to
`default` and one of 8 groups. Then `facegate export` and `facegate import` run as child processes
and their wall time and peak RSS (wait4's ru_maxrss) are reported.
Usage: scripts/bench_bundle.py WORKDIR [--faces 100000]. Figures go to docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from daemon.library import faces
from daemon.library.store import FaceStore, open_keys
from daemon.library.types import Rect
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of

GROUPS = 8


def generate(db: Path, count: int) -> float:
    rng = np.random.default_rng(7)
    model_id = model_id_of("int8")
    started = time.perf_counter()
    with FaceStore(db, open_keys(db, db.parent / "library.keys")) as store:
        for g in range(GROUPS):
            store.create_group(f"g{g}", f"group {g}", "", 75)

        def fill(conn, keys) -> None:
            for i in range(count):
                template = rng.standard_normal(DESCRIPTOR_SIZE).astype(np.float32) * 0.12
                faces.add_face(
                    conn,
                    keys,
                    image_id=f"img-{i:06d}",
                    original=rng.bytes(1024),
                    kind="jpeg",
                    width=640,
                    height=480,
                    description="",
                    name=f"person {i}",
                    gender="",
                    rect=Rect(10, 10, 110, 110),
                    crop_jpeg=rng.bytes(512),
                    template=template,
                    model_id=model_id,
                    quality=0.9,
                    group_ids=["default", f"g{i % GROUPS}"],
                )

        store.rewrite(fill)
    return time.perf_counter() - started


def timed(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "daemon", *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"facegate {' '.join(args)} failed")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--faces", type=int, default=100_000)
    args = parser.parse_args()
    source, target = args.workdir / "source", args.workdir / "target"
    for d in (source, target):
        if d.exists():
            raise SystemExit(f"{d} exists: give an empty WORKDIR")
    source.mkdir(parents=True)
    bundle = args.workdir / "library.bundle"
    gen = generate(source / "library.sqlite3", args.faces)
    export = timed(["export", str(bundle), "--state-dir", str(source)])
    imported = timed(["import", str(bundle), "--state-dir", str(target), "--key", str(source / "bundle.key")])
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(
        f"faces: {args.faces}  library: {(source / 'library.sqlite3').stat().st_size / 2**20:.0f} MiB"
        f"  bundle: {bundle.stat().st_size / 2**20:.0f} MiB  (generation {gen:.1f} s)"
    )
    print(f"export: {export[0]:.1f} s, peak RSS {export[1]:.0f} MiB")
    print(f"import: {imported[0]:.1f} s, peak RSS {imported[1]:.0f} MiB")


if __name__ == "__main__":
    main()
