#!/usr/bin/env python3
"""Micro-benchmarks of the vision core: medians per stage, at 1 and 2 TFLite threads.

    .venv/bin/python scripts/bench.py [--repeat 50] [--threads 1 2]

Stages: JPEG decode (640×480, 1920×1080), detect short/full (including decoding the model output), align,
embed fp32/int8, and the whole 640×480 JPEG pipeline (decode → detect → refine → align → embed → quality).
Prints a markdown table for docs/BENCHMARKS.md. Timings are never asserted in tests.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.config import PACKAGE_MODELS_DIR  # noqa: E402
from daemon.vision.align import align_face  # noqa: E402
from daemon.vision.embed import Embedder  # noqa: E402
from daemon.vision.engine import ModelPaths, VisionEngine  # noqa: E402
from daemon.vision.image import ImageLimits, decode_image, encode_jpeg  # noqa: E402
from daemon.vision.runtime import load_interpreter  # noqa: E402


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def test_jpeg(width: int, height: int) -> bytes:
    """A photo-like JPEG: a test face placed on a textured background, encoded at quality 90."""
    face = cv2.cvtColor(cv2.imread(str(REPO / "tests/data/faces/obama.jpg")), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 3)
    scale = min(height * 0.8 / face.shape[0], width * 0.5 / face.shape[1])
    small = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    background[y : y + small.shape[0], x : x + small.shape[1]] = small
    return encode_jpeg(background, 90)


def run(threads: int, repeat: int) -> dict[str, float]:
    cv2.setNumThreads(1)
    paths = ModelPaths.resolve(PACKAGE_MODELS_DIR, "int8")
    engine = VisionEngine(paths, threads)
    flipped = VisionEngine(paths, threads, flip_average=True)  # models.flip_average, the default
    fp32 = Embedder(
        load_interpreter(ModelPaths.resolve(PACKAGE_MODELS_DIR, "fp32").embedding, threads), "fp32"
    )
    limits = ImageLimits(max_bytes=32 << 20, max_width=8192, max_height=8192)
    vga, full_hd = test_jpeg(640, 480), test_jpeg(1920, 1080)
    vga_rgb = decode_image(vga, limits).rgb
    face = engine.detect(vga_rgb, "short")[0]
    chip = align_face(vga_rgb, face)

    def pipeline(eng: VisionEngine = engine) -> None:
        image = decode_image(vga, limits).rgb
        analysis = eng.analyze_largest(image)
        assert analysis is not None

    return {
        "decode 640×480 JPEG": median_ms(lambda: decode_image(vga, limits), repeat),
        "decode 1920×1080 JPEG": median_ms(lambda: decode_image(full_hd, limits), repeat),
        "detect short (640×480)": median_ms(lambda: engine.detect(vga_rgb, "short"), repeat),
        "detect full (640×480)": median_ms(lambda: engine.detect(vga_rgb, "full"), repeat),
        "refine (2nd short pass)": median_ms(lambda: engine.refine(vga_rgb, face), repeat),
        "align (150×150 chip)": median_ms(lambda: align_face(vga_rgb, face), repeat),
        "embed fp32": median_ms(lambda: fp32.embed(chip), repeat),
        "embed int8": median_ms(lambda: engine.embedder.embed(chip), repeat),
        "embed int8, flip-averaged (default)": median_ms(lambda: flipped.embedder.embed(chip), repeat),
        "whole 640×480 JPEG pipeline (int8, one view)": median_ms(pipeline, repeat),
        "whole 640×480 JPEG pipeline (int8, flip-averaged: the default)": median_ms(
            lambda: pipeline(flipped), repeat
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    results = {t: run(t, args.repeat) for t in args.threads}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}, median of {args.repeat}"
    )
    print()
    print("| stage | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} (ms)" for t in args.threads) + " |")
    print("|---|" + "---:|" * len(args.threads))
    for stage in results[args.threads[0]]:
        print(f"| {stage} | " + " | ".join(f"{results[t][stage]:.2f}" for t in args.threads) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
