"""`facegate blur-video IN OUT`: blur every face of a video file, offline, with a progress bar.

The same tracker and fail-closed rule as the live stream and the blur-video tasks
(daemon.services.video_blur); the detector settings come from the config file (privacy.min_score,
stream.hold_seconds, stream.max_detection_age). The output container follows OUT's suffix: .webm
(VP9), .mp4, .m4v, .mov, .mkv (H.264) or .avi (Motion JPEG); audio is not copied.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from daemon.app import engine_from_config
from daemon.config import load_config
from daemon.errors import FacegateError
from daemon.services.video_blur import (
    blur_video,
    privacy_detector,
    probe_video,
    video_settings,
)
from daemon.services.video_writers import WRITERS
from daemon.vision.blur import BLUR_METHODS
from daemon.vision.engine import ModelPaths

BAR_WIDTH = 28


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("blur-video", help="blur every face of a video file (progress on stderr)")
    p.add_argument("input", type=Path, help="video file to read")
    p.add_argument("output", type=Path, help=f"video file to write ({', '.join(WRITERS)})")
    p.add_argument("--method", choices=sorted(BLUR_METHODS), help="blur method (default: privacy.method)")
    p.add_argument("--config", type=Path, help="YAML config (models, privacy and stream settings)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, only the summary")
    p.set_defaults(func=_cmd_blur_video)


class ProgressBar:
    """frames done / total, fps and ETA on one line, redrawn in place on a terminal; on a pipe or a
    log, a plain line at most every few seconds."""

    def __init__(self, stream: TextIO, interval: float | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.started = time.monotonic()
        self._last = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and done != total:
            return
        self._last = now
        self.stream.write(
            ("\r" if self.tty else "") + self.line(done, total, now) + ("" if self.tty else "\n")
        )
        self.stream.flush()

    def line(self, done: int, total: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        fps = done / elapsed
        if total <= 0:
            return f"{done} frames  {fps:5.1f} fps  {_clock(elapsed)} elapsed"
        share = min(1.0, done / total)
        filled = round(share * BAR_WIDTH)
        eta = (total - done) / fps if fps > 0 else 0.0
        return (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} frames {share:4.0%}  "
            f"{fps:5.1f} fps  ETA {_clock(max(eta, 0.0))}"
        )

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _cmd_blur_video(args: argparse.Namespace) -> int:
    if args.input.resolve() == args.output.resolve():
        raise FacegateError("the output must not be the input file")
    if args.output.suffix.lower() not in WRITERS:
        raise FacegateError(
            f"unsupported output type {args.output.suffix!r}; use one of {', '.join(WRITERS)}"
        )
    probe_video(args.input)  # a clear error before the models load
    config = load_config(args.config)
    paths = ModelPaths.resolve(config.models_path, config.models.embedding)
    engine = engine_from_config(config, paths, with_embedder=False)  # blurring never embeds
    settings = video_settings(config, args.method)
    bar = None if args.quiet else ProgressBar(sys.stderr)
    try:
        detect = privacy_detector(engine, config, detector=config.tasks.detector)
        result = blur_video(args.input, args.output, detect, settings, progress=bar)
    finally:
        if bar is not None:
            bar.finish()
    print(
        f"{args.output}: {result.frames} frames in {result.seconds:.1f} s "
        f"({result.frames / max(result.seconds, 1e-6):.1f} fps), up to {result.max_faces} faces per frame"
        + (f", {result.failsafe_frames} frames fully blurred" if result.failsafe_frames else "")
    )
    return 0
