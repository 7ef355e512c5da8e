#!/usr/bin/env python3
"""Speed of the blink check's landmarks: face mesh and iris model per face, 1 TFLite thread.

    .venv/bin/python scripts/bench_blink.py [--repeat 200]

The frames are the 640×480 door-camera frames of tests/blink_clips.py (a real face photo, ~170 px
wide, moved rigidly, noise and JPEG); the face is BlazeFace short-range's on each frame. Stages:
face mesh (crop + model + mapping back), the model run alone, both eyes' openness (two crops + two
iris runs), landmarks per face (mesh + eyes), and BlinkLiveness.observe per frame while it is still
looking for a blink. Prints the median and fastest wall time and the median CPU time of the
calling thread per stage (ms). Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from daemon.services.door_liveness import blink_settings

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from blink_clips import load_photo, rigid_frames  # noqa: E402

from daemon.config import PACKAGE_MODELS_DIR, BlinkConfig, CheckinConfig  # noqa: E402
from daemon.vision.blink import BlinkLiveness, load_landmark_models  # noqa: E402
from daemon.vision.detect import Detector  # noqa: E402
from daemon.vision.models import resolve_model  # noqa: E402
from daemon.vision.runtime import load_interpreter  # noqa: E402


def timings(fn: Callable[[int], object], repeat: int, count: int) -> tuple[float, float, float]:
    """Median and fastest wall time, and median CPU time of this thread (ms).

    With one TFLite thread the model runs on the calling thread, so its CPU time is what the stage
    costs even when other processes share the cores (the wall time then includes waiting).
    """
    for k in range(3):
        fn(k % count)
    wall, cpu = [], []
    for k in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn(k % count)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--photo", default="obama.jpg")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    detector = Detector(load_interpreter(resolve_model(PACKAGE_MODELS_DIR, "detector_short"), 1), "short")
    mesh, eyes = load_landmark_models(PACKAGE_MODELS_DIR, 1)
    photo = load_photo(args.photo)
    source = max(detector.detect(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)), key=lambda f: f.area)
    frames = list(rigid_frames(photo, source.box, 50, seed=1))
    faces = [max(detector.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)), key=lambda f: f.area) for f in frames]
    meshes = [mesh.mesh(f, face) for f, face in zip(frames, faces, strict=True)]
    chips = [mesh.crop(f, face)[0] for f, face in zip(frames, faces, strict=True)]
    tensors = [cv2.cvtColor(c, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0 for c in chips]
    interpreter = mesh._interpreter  # the model run alone, for the table

    def mesh_model(k: int) -> None:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensors[k])
        interpreter.invoke()

    def landmarks(k: int) -> None:
        eyes.openness(frames[k], mesh.mesh(frames[k], faces[k]).points)

    settings = blink_settings(BlinkConfig(), CheckinConfig())
    check = BlinkLiveness(mesh, eyes, settings)
    n = len(frames)
    stages = {
        "face mesh (crop + model + map back)": timings(
            lambda k: mesh.mesh(frames[k], faces[k]), args.repeat, n
        ),
        "face mesh model run alone": timings(mesh_model, args.repeat, n),
        "eye openness, both eyes (2 crops + 2 iris runs)": timings(
            lambda k: eyes.openness(frames[k], meshes[k].points), args.repeat, n
        ),
        "landmarks per face (mesh + eyes)": timings(landmarks, args.repeat, n),
        "BlinkLiveness.observe (no blink yet)": timings(
            lambda k: check.observe(k * 0.04, frames[k], faces[k], 80.0), args.repeat, n
        ),
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, {args.repeat} runs over {n} frames of {args.photo}, 1 thread"
    )
    print()
    print("| stage | wall median (ms) | wall fastest (ms) | CPU median (ms) |")
    print("|---|---:|---:|---:|")
    for stage, (median, fastest, cpu) in stages.items():
        print(f"| {stage} | {median:.2f} | {fastest:.2f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
