"""Blurring a video file frame by frame, with the stream's tracker and fail-closed rule.

Used by `facegate blur-video` (daemon.cli_video) and by the blur-video tasks (daemon.services.tasks).
A file has no clock to keep up with, so every frame is detected by default and each frame is written
only after the detector has also seen the next one (the gate's lookahead): a face found a frame late
is still blurred in the frame before, and one the detector misses for a frame or two stays covered by
its track. Timestamps are the file's own (frame number / fps), so the tracker's hold and margins mean
the same as on a live camera. A frame the rule cannot cover (no detection within max_detection_age,
possible only with detect_every > 1) is written fully blurred, so the output has exactly as many
frames as the input; if the detector raises, nothing is kept (the partial output is deleted).

The written file holds video only (audio and metadata are not copied: they may identify people too).
Its container and codec follow the target's suffix (daemon/services/video_writers.py: .webm VP9,
.mp4 H.264, .avi Motion JPEG).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from daemon.camera.base import Frame, bgr_to_rgb
from daemon.camera.failclosed import FailClosedGate, GateSettings, Release, blurred_copy, failsafe_image
from daemon.camera.pipeline import DetectFn
from daemon.config import Config
from daemon.errors import FacegateError
from daemon.fsmodes import private_file
from daemon.services.privacy import detect_settings
from daemon.services.video_writers import WRITERS, FrameWriter, VideoWriteError, open_writer
from daemon.vision.engine import VisionEngine
from daemon.vision.privacy_detect import DetectPass, PrivacyDetectSettings, detect_for_privacy
from daemon.vision.types import Face

DEFAULT_FPS = 25.0
Progress = Callable[[int, int], None]  # (frames done, frames expected; 0 when unknown)


class VideoError(FacegateError):
    """A video cannot be read or written (not a video, unsupported codec, unwritable output)."""


class VideoCancelled(FacegateError):
    """Processing was stopped before the end (daemon shutdown); the partial output was deleted."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int  # as the container states it (0: unknown); the real count is known at the end


@dataclass(frozen=True, slots=True)
class VideoBlurSettings:
    method: str = "gaussian"
    detect_every: int = 1
    gate: GateSettings = field(default_factory=GateSettings)


@dataclass(frozen=True, slots=True)
class VideoBlurResult:
    frames: int
    detected_frames: int
    failsafe_frames: int
    max_faces: int  # most tracker boxes blurred in one frame
    seconds: float


def privacy_detector(
    engine: VisionEngine,
    config: Config,
    tiles_per_call: int | None = None,
    detector: str | None = None,
    max_side: int | None = None,
) -> Callable[[np.ndarray], list[Face]]:
    """The one detection function of the stream and of video files: the blur API's high-recall
    detector (config section ``privacy``) with the backend ``detector`` (stream.detector or
    tasks.detector; None: privacy.detector), detecting at privacy.accurate_max_side or ``max_side``
    (stream.max_side).

    ``tiles_per_call`` None runs every pass of the plan on every frame (files: thorough, not real
    time); a number spreads the tiles over successive calls (the stream, see RotatingDetector).
    """
    settings = detect_settings(config.privacy, detector, accurate=True, max_side=max_side)
    if tiles_per_call is not None:
        return RotatingDetector(engine, settings, tiles_per_call)

    def detect(rgb: np.ndarray) -> list[Face]:
        return detect_for_privacy(engine, rgb, settings)

    return detect


class RotatingDetector:
    """detect_for_privacy spread over successive frames, for a stream that must keep its frame rate.

    Every call runs the whole-frame pass(es) and the next ``tiles_per_call`` tiles of the plan in
    turn (0: whole frame only). A face too small for the whole-frame pass is found when its tile
    comes round (every len(tiles) / tiles_per_call calls) and the tracker holds it in between, which
    is why stream.hold_seconds must exceed one tile cycle. Not thread-safe (one detector thread).
    """

    def __init__(self, engine: VisionEngine, settings: PrivacyDetectSettings, tiles_per_call: int) -> None:
        if tiles_per_call < 0:
            raise ValueError("tiles_per_call must be >= 0")
        self._engine = engine
        self._settings = settings
        self._per_call = tiles_per_call
        self._next = 0

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        return detect_for_privacy(self._engine, rgb, self._settings, self._select)

    def _select(self, plan: list[DetectPass]) -> list[DetectPass]:
        """The whole-frame pass(es) and the next tiles in turn."""
        passes = [p for p in plan if p.roi is None]
        tiles = [p for p in plan if p.roi is not None]
        if tiles and self._per_call:
            count = min(self._per_call, len(tiles))
            passes += [tiles[(self._next + i) % len(tiles)] for i in range(count)]
            self._next = (self._next + count) % len(tiles)
        return passes


def video_settings(config: Config, method: str | None = None) -> VideoBlurSettings:
    """How the CLI and the tasks blur a file: every frame detected, the stream's hold and detection
    age, and a lookahead of at least one frame (a file can always wait for the next detection)."""
    stream = config.stream
    return VideoBlurSettings(
        method=method or config.privacy.method,
        gate=GateSettings(
            max_detection_age=stream.max_detection_age,
            lookahead=max(1, stream.lookahead),
            hold_seconds=stream.hold_seconds,
        ),
    )


def probe_video(path: Path) -> VideoInfo:
    """Open a video and decode its first frame; VideoError if that fails."""
    cap = _open(path)
    try:
        ok, image = cap.read()
        if not ok or image is None:
            raise VideoError("Invalid video format: no decodable frame")
        return _info(cap, image)
    finally:
        cap.release()


def blur_video(
    source: Path,
    target: Path,
    detect: DetectFn,
    settings: VideoBlurSettings | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoBlurResult:
    """Write a copy of ``source`` with every face blurred to ``target`` (container and codec from its
    suffix: daemon/services/video_writers.py)."""
    settings = settings or VideoBlurSettings()
    if target.suffix.lower() not in WRITERS:
        raise VideoError(f"unsupported output type {target.suffix!r}; use one of {', '.join(WRITERS)}")
    started = time.monotonic()
    cap = _open(source)
    partial = target.with_name(f".{target.stem}.partial{target.suffix}")
    writer: FrameWriter | None = None
    try:
        ok, image = cap.read()
        if not ok or image is None:
            raise VideoError("Invalid video format: no decodable frame")
        info = _info(cap, image)
        private_file(partial)  # 0600 before the writer opens it: it keeps the mode of an existing file
        try:
            writer = open_writer(partial, info.width, info.height, info.fps)
        except VideoWriteError as exc:
            raise VideoError(str(exc)) from exc
        # Enough room for the frames between two detections and the lookahead: nothing is dropped.
        room = settings.detect_every * (settings.gate.lookahead + 1) + 2
        gate = FailClosedGate(replace(settings.gate, max_pending=room))
        counts = {"frames": 0, "detected": 0, "failsafe": 0, "max_faces": 0}

        def write(release: Release) -> None:
            if release.boxes is None:
                out = failsafe_image(release.frame.rgb, "blur", "no detection near this frame")
                counts["failsafe"] += 1
            else:
                out = blurred_copy(release.frame.rgb, release.boxes, settings.method)
                counts["max_faces"] = max(counts["max_faces"], len(release.boxes))
            assert writer is not None
            writer.write(out)
            counts["frames"] += 1
            if progress is not None:
                progress(counts["frames"], info.frames)

        index = 0
        while True:
            if should_stop is not None and should_stop():
                raise VideoCancelled("stopped before the end")
            rgb = _rgb_of_size(image, info.width, info.height)
            frame = Frame(rgb=rgb, timestamp=index / info.fps, index=index)
            gate.add_frame(frame)
            if index % settings.detect_every == 0:
                gate.add_detections(index, frame.timestamp, detect(rgb))
                counts["detected"] += 1
            for release in gate.release():
                write(release)
            index += 1
            ok, image = cap.read()
            if not ok or image is None:
                break
        for release in gate.release(flush=True):
            write(release)
        writer.close()
        writer = None
        partial.replace(target)
    except BaseException:
        if writer is not None:
            writer.abort()
        partial.unlink(missing_ok=True)
        raise
    finally:
        cap.release()
    return VideoBlurResult(
        frames=counts["frames"],
        detected_frames=counts["detected"],
        failsafe_frames=counts["failsafe"],
        max_faces=counts["max_faces"],
        seconds=time.monotonic() - started,
    )


def count_frames(path: Path) -> int:
    """Frames really decodable in a file (slow: decodes everything; for tests and checks)."""
    cap = _open(path)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def _open(path: Path) -> cv2.VideoCapture:
    if not Path(path).is_file():
        raise VideoError(f"video file not found: {path}")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoError("Invalid video format: cannot open the file as a video")
    return cap


def _info(cap: cv2.VideoCapture, first: np.ndarray) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not (math.isfinite(fps) and 0 < fps <= 1000):
        fps = DEFAULT_FPS
    frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    frames = int(frames) if math.isfinite(frames) and frames > 0 else 0
    height, width = first.shape[:2]
    return VideoInfo(width=int(width), height=int(height), fps=float(fps), frames=frames)


def _rgb_of_size(bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """RGB at the output size (a stream may change resolution mid-file; the writer cannot)."""
    if bgr.shape[1] != width or bgr.shape[0] != height:
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    return bgr_to_rgb(bgr)
