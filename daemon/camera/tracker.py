"""Face tracks between detections, so the fail-closed blur pipeline never lets a face reappear.

The detector does not run on every frame and sometimes misses a face it found a frame earlier.
The tracker keeps every face it has seen for ``hold_seconds`` after its last detection and answers
"where could each face be at time t" with a box that errs on the large side:

* association: detections are matched to tracks by IoU with each track's predicted box (greedy,
  best pair first, gate ``iou_gate``), then by centre distance relative to the face size for small
  fast faces whose boxes no longer overlap; unmatched detections start new tracks;
* motion: an alpha-beta filter (constant velocity) per track on centre x/y, width and height;
  the first two detections give the velocity directly, later ones refine it;
* coverage: the predicted box is enlarged by a margin that grows with the time since the last
  detection and with the distance extrapolated, and is joined with the last detected box (in case
  the face stopped), so both "it kept moving" and "it stood still" stay covered.

Boxes are (x1, y1, x2, y2) floats in pixels, the convention of ``daemon.vision.types.Face``;
detections are (x1, y1, x2, y2, score) (score optional). Timestamps are ``time.monotonic()``
seconds (``Frame.timestamp``). Not thread-safe: one tracker belongs to one pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from daemon.vision.boxes import iou_matrix

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """Tuning knobs; the defaults suit faces at 10–30 fps with detection every frame or two."""

    hold_seconds: float = 1.0  # keep a track this long after its last detection
    iou_gate: float = 0.2  # least IoU between a detection and a predicted box to match
    centre_gate: float = 1.0  # fallback match: centre distance <= this × face size (sqrt(w·h))…
    centre_gate_growth: float = 5.0  # …plus this many face sizes per second since the track's last hit
    alpha: float = 0.8  # filter gain on position/size (1 = trust detections fully)
    beta: float = 0.5  # filter gain on velocity (≈ alpha²/(2-alpha): responsive, little lag)
    margin: float = 0.1  # fraction of width/height added on every side at a detection
    margin_growth: float = 2.0  # extra fraction per second since the last detection
    new_track_growth: float = 6.0  # the same for a face seen once (speed unknown: up to ~6 sizes/s)
    margin_max: float = 1.0  # the margin fraction never exceeds this
    motion_margin: float = 0.5  # add this fraction of the extrapolated displacement as slack
    max_extrapolation: float = 0.5  # seconds of velocity extrapolation at most
    cover_last_seen: bool = True  # join the last detected box (the face may have stopped)

    def __post_init__(self) -> None:
        if self.hold_seconds <= 0 or self.max_extrapolation < 0:
            raise ValueError("hold_seconds must be > 0 and max_extrapolation >= 0")
        if not (0 < self.alpha <= 1 and 0 <= self.beta <= 2):
            raise ValueError("need 0 < alpha <= 1 and 0 <= beta <= 2")
        knobs = (self.margin, self.margin_growth, self.new_track_growth, self.margin_max, self.motion_margin)
        if min(*knobs, self.centre_gate, self.centre_gate_growth) < 0:
            raise ValueError("margins must be >= 0")


@dataclass(frozen=True, slots=True)
class TrackView:
    """A read-only look at one track (for tests, debugging overlays and metrics)."""

    id: int
    box: Box  # filtered estimate at ``last_seen``, without margin
    velocity: tuple[float, float]  # centre velocity in pixels per second
    last_seen: float
    hits: int
    score: float


class _Track:
    """State [cx, cy, w, h] and its velocity, filtered with an alpha-beta filter."""

    __slots__ = ("hits", "id", "last_box", "last_seen", "score", "state", "velocity")

    def __init__(self, track_id: int, box: np.ndarray, score: float, timestamp: float) -> None:
        self.id = track_id
        self.state = _to_cwh(box)
        self.velocity = np.zeros(4)
        self.last_box = box
        self.last_seen = timestamp
        self.hits = 1
        self.score = score

    def predict(self, timestamp: float, max_extrapolation: float) -> tuple[np.ndarray, float]:
        """[cx, cy, w, h] at ``timestamp`` and the (clamped) extrapolation time used.

        A shrinking size is not extrapolated: a box predicted smaller than the last estimate could
        uncover part of the face, which is the one mistake the blur must not make.
        """
        dt = min(max(timestamp - self.last_seen, -max_extrapolation), max_extrapolation)
        predicted = self.state + self.velocity * dt
        predicted[2:] = np.maximum(predicted[2:], self.state[2:])
        return predicted, dt

    def update(self, box: np.ndarray, score: float, timestamp: float, config: TrackerConfig) -> None:
        measured = _to_cwh(box)
        dt = timestamp - self.last_seen
        if dt <= 0:  # a detection for an older (or the same) frame: refine position, keep velocity
            self.state = self.state + config.alpha * (measured - self.state)
        elif self.hits == 1:  # the second sighting gives the velocity directly
            self.velocity = (measured - self.state) / dt
            self.state = measured
        else:
            predicted = self.state + self.velocity * dt
            residual = measured - predicted
            self.state = predicted + config.alpha * residual
            self.velocity = self.velocity + (config.beta / dt) * residual
        self.last_box = box
        self.last_seen = max(self.last_seen, timestamp)
        self.hits += 1
        self.score = score


class FaceTracker:
    """Tracks faces across frames; see the module docstring for the method."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def track_count(self) -> int:
        """Tracks alive as of the last :meth:`update` (expired ones are removed there)."""
        return len(self._tracks)

    def tracks(self) -> list[TrackView]:
        return [
            TrackView(
                id=t.id,
                box=_to_box(t.state),
                velocity=(float(t.velocity[0]), float(t.velocity[1])),
                last_seen=t.last_seen,
                hits=t.hits,
                score=t.score,
            )
            for t in self._tracks
        ]

    def update(self, detections: Iterable[Sequence[float]], timestamp: float) -> None:
        """Feed the detections of the frame captured at ``timestamp`` (an empty list is a frame
        where the detector ran and found nothing: tracks coast and expire after ``hold_seconds``)."""
        config = self.config
        self._tracks = [t for t in self._tracks if timestamp - t.last_seen <= config.hold_seconds]
        boxes, scores = _parse_detections(detections)
        predicted = np.array(
            [_to_box_array(t.predict(timestamp, config.max_extrapolation)[0]) for t in self._tracks]
        ).reshape(-1, 4)
        gates = np.array(
            [
                config.centre_gate
                + config.centre_gate_growth * min(abs(timestamp - t.last_seen), config.max_extrapolation)
                for t in self._tracks
            ]
        )
        pairs = _associate(boxes, predicted, gates, config.iou_gate)
        matched_dets = set()
        for det_i, track_i in pairs:
            self._tracks[track_i].update(boxes[det_i], scores[det_i], timestamp, config)
            matched_dets.add(det_i)
        for det_i in range(len(boxes)):
            if det_i not in matched_dets:
                self._tracks.append(_Track(self._next_id, boxes[det_i], scores[det_i], timestamp))
                self._next_id += 1

    def boxes_at(self, timestamp: float, frame_size: tuple[int, int] | None = None) -> list[Box]:
        """Every live track's box at ``timestamp``, enlarged to stay on the safe side.

        ``frame_size`` (width, height) clips boxes to the image and drops those entirely outside.
        Tracks older than ``hold_seconds`` at ``timestamp`` are left out (not deleted).
        """
        config = self.config
        out: list[Box] = []
        for track in self._tracks:
            since = timestamp - track.last_seen
            if since > config.hold_seconds:
                continue
            (cx, cy, w, h), dt = track.predict(timestamp, config.max_extrapolation)
            growth = config.new_track_growth if track.hits == 1 else config.margin_growth
            fraction = min(config.margin + growth * abs(since), config.margin_max)
            pad_x = fraction * w + config.motion_margin * abs(track.velocity[0] * dt)
            pad_y = fraction * h + config.motion_margin * abs(track.velocity[1] * dt)
            x1, y1 = cx - w / 2 - pad_x, cy - h / 2 - pad_y
            x2, y2 = cx + w / 2 + pad_x, cy + h / 2 + pad_y
            if config.cover_last_seen:
                lx1, ly1, lx2, ly2 = track.last_box
                mx, my = config.margin * (lx2 - lx1), config.margin * (ly2 - ly1)
                x1, y1 = min(x1, lx1 - mx), min(y1, ly1 - my)
                x2, y2 = max(x2, lx2 + mx), max(y2, ly2 + my)
            if frame_size is not None:
                width, height = frame_size
                x1, x2 = max(x1, 0.0), min(x2, float(width))
                y1, y2 = max(y1, 0.0), min(y2, float(height))
                if x2 <= x1 or y2 <= y1:
                    continue
            out.append((float(x1), float(y1), float(x2), float(y2)))
        return out


def _parse_detections(detections: Iterable[Sequence[float]]) -> tuple[np.ndarray, list[float]]:
    boxes: list[list[float]] = []
    scores: list[float] = []
    for det in detections:
        if len(det) not in (4, 5):
            raise ValueError(f"a detection is (x1, y1, x2, y2[, score]), got {det!r}")
        x1, y1, x2, y2 = (float(v) for v in det[:4])
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
            continue  # a degenerate box says nothing about where a face is
        boxes.append([x1, y1, x2, y2])
        scores.append(float(det[4]) if len(det) == 5 else 1.0)
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), scores


def _associate(
    dets: np.ndarray, preds: np.ndarray, centre_gates: np.ndarray, iou_gate: float
) -> list[tuple[int, int]]:
    """Greedy matching: IoU pairs best first, then centre distance (in face sizes, gate per track)
    for what is left."""
    if len(dets) == 0 or len(preds) == 0:
        return []
    iou = iou_matrix(dets, preds)
    pairs: list[tuple[int, int]] = []
    used_d: set[int] = set()
    used_t: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        d, t = divmod(int(flat), iou.shape[1])
        if iou[d, t] < iou_gate:
            break
        if d not in used_d and t not in used_t:
            pairs.append((d, t))
            used_d.add(d)
            used_t.add(t)
    # Small fast faces: their boxes may not overlap the prediction at all; accept a near centre
    # when the sizes agree within a factor of two.
    det_c, det_s = _centres_sizes(dets)
    pred_c, pred_s = _centres_sizes(preds)
    candidates: list[tuple[float, int, int]] = []
    for d in range(len(dets)):
        if d in used_d:
            continue
        for t in range(len(preds)):
            if t in used_t:
                continue
            ratio = det_s[d] / pred_s[t]
            if not 0.5 <= ratio <= 2.0:
                continue
            distance = float(np.hypot(*(det_c[d] - pred_c[t]))) / max(det_s[d], pred_s[t])
            if distance <= centre_gates[t]:
                candidates.append((distance, d, t))
    for _, d, t in sorted(candidates):
        if d not in used_d and t not in used_t:
            pairs.append((d, t))
            used_d.add(d)
            used_t.add(t)
    return pairs


def _centres_sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    sizes = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return centres, sizes


def _to_cwh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float64)


def _to_box_array(cwh: np.ndarray) -> np.ndarray:
    cx, cy, w, h = cwh
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


def _to_box(cwh: np.ndarray) -> Box:
    x1, y1, x2, y2 = _to_box_array(cwh)
    return float(x1), float(y1), float(x2), float(y2)
