#!/usr/bin/env python3
"""The stream pipeline end to end: file source → detect → track → blur → JPEG, on this machine.

    .venv/bin/python scripts/bench_stream.py [--size 1280x720] [--seconds 20] [--fps 25] [--unpaced]

A synthetic clip (tests/clip_maker.py: real face photos moving and scaling over a background, with
known positions) is written to a temp dir at the given size and played as a looping file source,
paced like a camera at --fps (or --unpaced: as fast as it decodes, to find the ceiling). Every
published frame is encoded as JPEG (as if a viewer watched) and checked afterwards against the
clip's truth: a face region (face at least 3/4 inside the frame) that kept more than a tenth of its
raw detail (Laplacian variance) counts as unblurred. Prints processed fps, per-frame latency
(capture → published), detection time, drops, failsafe and unblurred frames as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from clip_maker import Clip, detail, make_clip, read_frames, small_entering_paths  # noqa: E402

from daemon.camera.capture import CaptureLoop  # noqa: E402
from daemon.camera.failclosed import GateSettings  # noqa: E402
from daemon.camera.file_source import VideoFileSource  # noqa: E402
from daemon.camera.pipeline import PipelineSettings, PublishedFrame, StreamPipeline  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.services.video_blur import privacy_detector  # noqa: E402
from daemon.vision.engine import ModelPaths, VisionEngine  # noqa: E402

CHECK_VISIBLE = 0.75
BLURRED_RATIO = 0.1


class Checker:
    """Pipeline sink: keeps the face crops of each published frame (cheap) for checking afterwards."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.crops: list[tuple[int, bool, list[np.ndarray]]] = []
        self.latencies: list[float] = []
        self.jpeg_bytes = 0
        self._lock = threading.Lock()

    def __call__(self, frame: PublishedFrame) -> None:
        k = frame.index % self.clip.frame_count
        crops = []
        for face in self.clip.truth[k]:
            if face.visible >= CHECK_VISIBLE:
                x1, y1, x2, y2 = face.clipped(*self.clip.size)
                crops.append(frame.rgb[y1:y2, x1:x2].copy())
        with self._lock:
            self.crops.append((frame.index, frame.failsafe, crops))
            self.latencies.append((frame.published_at - frame.timestamp) * 1000)
            self.jpeg_bytes += len(frame.jpeg or b"")

    def unblurred(self, raw: list[np.ndarray]) -> list[int]:
        bad = []
        for index, _failsafe, crops in self.crops:
            k = index % self.clip.frame_count
            faces = [f for f in self.clip.truth[k] if f.visible >= CHECK_VISIBLE]
            for face, crop in zip(faces, crops, strict=True):
                region = face.clipped(*self.clip.size)
                h, w = crop.shape[:2]
                if detail(crop, (0, 0, w, h)) > BLURRED_RATIO * detail(raw[k], region):
                    bad.append(index)
                    break
        return bad


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1280x720", help="frame size WxH (default 1280x720)")
    parser.add_argument("--frames", type=int, default=150, help="frames in the (looping) clip")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to run")
    parser.add_argument("--fps", type=float, default=25.0, help="camera pace of the file source")
    parser.add_argument("--unpaced", action="store_true", help="read the file as fast as it decodes")
    parser.add_argument("--threads", type=int, default=1, help="TFLite threads of the detector")
    parser.add_argument("--detect-every", type=int, default=1)
    parser.add_argument("--method", default="gaussian")
    parser.add_argument("--detector", help="detector backend (default: stream.detector)")
    parser.add_argument("--small-faces", action="store_true", help="faces of 32–40 px, entering (720p)")
    parser.add_argument(
        "--tiles", type=int, help="tiles per detection (default: stream.tiles_per_frame); -1: all tiles"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    config = load_config(None, environ={})
    tiles = config.stream.tiles_per_frame if args.tiles is None else (None if args.tiles < 0 else args.tiles)
    model_paths = ModelPaths.resolve(config.models_path, config.models.embedding)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing a {args.frames}-frame {width}×{height} clip…", file=sys.stderr)
        paths = small_entering_paths(width, height) if args.small_faces else None
        clip = make_clip(Path(tmp) / "bench.avi", (width, height), args.frames, args.fps, paths)
        raw = read_frames(clip.path)
        checker = Checker(clip)
        stream = config.stream
        settings = PipelineSettings(
            gate=GateSettings(
                stream.max_detection_age, stream.lookahead, stream.max_pending_frames, stream.hold_seconds
            ),
            detect_every=args.detect_every,
            stall_seconds=stream.stall_seconds,
            method=args.method,
            jpeg_quality=stream.jpeg_quality,
        )
        source = VideoFileSource(clip.path, loop=True, paced=not args.unpaced, fps=args.fps)
        pipeline = StreamPipeline(
            CaptureLoop(source),
            lambda: privacy_detector(
                VisionEngine(model_paths, args.threads),
                config,
                tiles,
                args.detector or stream.detector,
                stream.max_side,
            ),
            settings,
            sinks=[checker],
        )
        cpu_start = os.times()
        pipeline.start()
        time.sleep(1.0)  # warm-up: models load, first frames
        with checker._lock:
            checker.crops.clear()
            checker.latencies.clear()
        started = time.monotonic()
        before = pipeline.stats()
        time.sleep(args.seconds)
        after = pipeline.stats()
        elapsed = time.monotonic() - started
        cpu_end = os.times()
        pipeline.stop()
        unblurred = checker.unblurred(raw)

    published = after["frames_published"] - before["frames_published"]
    captured = after["frames_captured"] - before["frames_captured"]
    failsafe = after["failsafe_frames"] - before["failsafe_frames"]
    dropped = after["dropped_total"] - before["dropped_total"]
    detections = after["detections"] - before["detections"]
    cpu = (cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system) / (elapsed + 1.0)
    latencies = checker.latencies
    system = platform.processor() or platform.platform()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {system}")
    print(f"date: {time.strftime('%Y-%m-%d')}, command: {' '.join(sys.argv)}\n")
    print("| metric | value |\n|---|---|")
    rows = [
        (
            "frame size / source",
            f"{width}×{height}, {'unpaced' if args.unpaced else f'paced {args.fps:g} fps'}",
        ),
        (
            "detection",
            f"privacy.tiling={config.privacy.tiling}, tiles per frame: {'all' if tiles is None else tiles}",
        ),
        ("captured fps", f"{captured / elapsed:.1f}"),
        ("processed (published) fps", f"{published / elapsed:.1f}"),
        ("detections per second", f"{detections / elapsed:.1f}"),
        ("detection ms (mean / p95)", f"{after['detection_ms']['mean']} / {after['detection_ms']['p95']}"),
        (
            "latency capture→published ms (p50 / p95 / max)",
            f"{statistics.median(latencies):.0f} / {percentile(latencies, 0.95):.0f} / {max(latencies):.0f}",
        ),
        ("frames dropped", f"{dropped} of {captured} ({after['dropped']})"),
        ("failsafe frames", str(failsafe)),
        ("frames checked / unblurred", f"{len(checker.crops)} / {len(unblurred)}"),
        ("mean JPEG size", f"{checker.jpeg_bytes / max(1, published) / 1024:.0f} KiB"),
        ("process CPU (cores busy)", f"{cpu:.2f}"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    if unblurred:
        print(f"\nUNBLURRED frames: {unblurred[:20]}", file=sys.stderr)
    return 1 if unblurred else 0


if __name__ == "__main__":
    sys.exit(main())
