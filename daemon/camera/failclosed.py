"""The fail-closed rule: when a frame may leave, which boxes cover it, and what leaves when it may not.

Shared by the live stream (daemon.camera.pipeline, detection in its own thread) and video files
(daemon.services.video_blur, detection inline). Frames wait in a short queue until the detector has
run on a frame far enough ahead; then each is blurred with the tracker's boxes at its own timestamp:

* ``lookahead`` (frames): a frame waits for a detection on a frame at least this many frames later.
  The tracker then knows where a face is on both sides in time, so a face the detector finds one
  frame late (it was entering, turning, or just scored below the threshold) is blurred in the frame
  before too. A face that vanishes from detections keeps its track for ``hold_seconds``.
* ``max_detection_age`` (seconds): a frame is released normally only if detection ran on it or on a
  frame at most this far away in time; otherwise it is *unsafe*: the stream drops it, a file gets a
  fully blurred frame. Detection may run on a subset of frames (``detect_every``, a slow detector):
  the frames in between are covered by boxes interpolated from both sides.

Anything that cannot go through this rule (detector failed, stalled, model missing) leaves only as
:func:`failsafe_image`: the whole frame destroyed, with a status line. Not thread-safe: the caller
holds its own lock.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from daemon.camera.base import Frame
from daemon.camera.tracker import Box, FaceTracker, TrackerConfig
from daemon.vision.blur import blur_faces

FAILSAFE_SIDE = 16  # a failsafe frame keeps at most 16 px of information along its longest side
BAND_SHARE = 0.07  # the status band's height as a share of the frame height


@dataclass(frozen=True, slots=True)
class GateSettings:
    max_detection_age: float = 0.25
    lookahead: int = 1
    max_pending: int = 8
    hold_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.max_detection_age <= 0 or self.lookahead < 0 or self.max_pending < 1:
            raise ValueError("need max_detection_age > 0, lookahead >= 0, max_pending >= 1")


@dataclass(frozen=True, slots=True)
class Release:
    """A frame the gate lets go: ``boxes`` to blur (tracker boxes, enlarged), or None when unsafe."""

    frame: Frame
    boxes: list[Box] | None
    detected: bool  # detection ran on this very frame


@dataclass(frozen=True, slots=True)
class _Detection:
    index: int
    timestamp: float
    boxes: list[tuple[float, float, float, float, float]]


class FailClosedGate:
    """Frames in, detections in (both in increasing index order), released frames out."""

    def __init__(self, settings: GateSettings, tracker_config: TrackerConfig | None = None) -> None:
        self.settings = settings
        base = tracker_config or TrackerConfig()
        self.tracker = FaceTracker(replace(base, hold_seconds=settings.hold_seconds))
        self._pending: collections.deque[Frame] = collections.deque()
        self._queued: collections.deque[_Detection] = collections.deque()  # not yet given to the tracker
        # The last few detections given to the tracker (index, timestamp): the ones around the
        # frames still to judge, for the max_detection_age rule.
        self._recent: collections.deque[tuple[int, float]] = collections.deque(maxlen=8)
        self._newest_detection = -1
        self._newest_frame = -1

    # -- input -----------------------------------------------------------------------------------

    def add_frame(self, frame: Frame) -> int:
        """Queue a frame; returns how many old frames were dropped to stay within ``max_pending``."""
        if frame.index <= self._newest_frame:
            return 0
        self._newest_frame = frame.index
        self._pending.append(frame)
        dropped = 0
        while len(self._pending) > self.settings.max_pending:
            self._pending.popleft()
            dropped += 1
        return dropped

    def add_detections(self, index: int, timestamp: float, faces: Sequence[object]) -> None:
        """What the detector found on frame ``index`` (``Face`` objects or (x1, y1, x2, y2[, score]))."""
        if index <= self._newest_detection:
            return
        self._newest_detection = index
        self._queued.append(_Detection(index, timestamp, [_as_detection(f) for f in faces]))

    # -- output ----------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def track_count(self) -> int:
        return self.tracker.track_count

    def head_timestamp(self) -> float | None:
        return self._pending[0].timestamp if self._pending else None

    def ready(self) -> bool:
        """Is at least one frame releasable now (without flushing)?"""
        return (
            bool(self._pending) and self._newest_detection >= self._pending[0].index + self.settings.lookahead
        )

    def release(self, flush: bool = False) -> list[Release]:
        """Every frame whose wait is over, in order. ``flush`` (end of input): release them all with
        what is known (frames past the last detection are covered only within max_detection_age)."""
        out: list[Release] = []
        while self._pending:
            frame = self._pending[0]
            if not flush and self._newest_detection < frame.index + self.settings.lookahead:
                break
            self._pending.popleft()
            self._apply_through(frame.index + self.settings.lookahead)
            out.append(self._judge(frame))
        return out

    def take_all(self) -> list[Frame]:
        """Empty the queue (the caller is going to failsafe these frames)."""
        frames = list(self._pending)
        self._pending.clear()
        return frames

    # -- internals -------------------------------------------------------------------------------

    def _apply_through(self, index: int) -> None:
        """Feed the tracker the queued detections up to the first one at or beyond ``index`` (all of
        them if there is none). Later ones wait: a track the tracker would expire at a much later
        time may still cover this frame."""
        while self._queued and (not self._recent or self._recent[-1][0] < index):
            det = self._queued.popleft()
            self.tracker.update(det.boxes, det.timestamp)
            self._recent.append((det.index, det.timestamp))

    def _judge(self, frame: Frame) -> Release:
        """Normal release if a detection ran within max_detection_age of the frame, else unsafe."""
        nearest = min((abs(frame.timestamp - t) for _, t in self._recent), default=None)
        detected = any(i == frame.index for i, _ in self._recent)
        if nearest is None or nearest > self.settings.max_detection_age:
            return Release(frame, None, detected)
        return Release(frame, self.tracker.boxes_at(frame.timestamp, frame.size), detected)


def _as_detection(face: object) -> tuple[float, float, float, float, float]:
    box = getattr(face, "box", None)
    if box is not None:
        return (*(float(v) for v in box), float(getattr(face, "score", 1.0)))  # type: ignore[return-value]
    values = tuple(float(v) for v in face)  # type: ignore[attr-defined]
    return values if len(values) == 5 else (*values, 1.0)  # type: ignore[return-value]


# -- what leaves --------------------------------------------------------------------------------


def blurred_copy(rgb: np.ndarray, boxes: Sequence[Box], method: str) -> np.ndarray:
    """A new image with every box covered (padded for hair line and chin); the input is untouched."""
    out = rgb.copy()
    blur_faces(out, boxes, method)
    return out


def failsafe_image(rgb: np.ndarray, style: str, message: str) -> np.ndarray:
    """The whole frame destroyed (``blur``: at most FAILSAFE_SIDE px of detail; ``black``) with a
    status band at the top, so a viewer sees why instead of a frozen or empty stream."""
    height, width = rgb.shape[:2]
    if style == "black":
        out = np.zeros_like(rgb)
    else:
        factor = FAILSAFE_SIDE / max(width, height)
        small = cv2.resize(
            rgb,
            (max(1, round(width * factor)), max(1, round(height * factor))),
            interpolation=cv2.INTER_AREA,
        )
        out = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    band = band_height(height)
    out[:band] = (out[:band] // 3).astype(np.uint8)
    scale = max(0.3, band / 40)
    cv2.putText(
        out,
        message.upper(),
        (max(2, band // 4), max(1, band * 3 // 4)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        max(1, round(scale * 1.5)),
        cv2.LINE_AA,
    )
    return np.ascontiguousarray(out)


def band_height(frame_height: int) -> int:
    """Rows at the top of a failsafe frame that hold the status text."""
    return max(12, round(frame_height * BAND_SHARE))
