"""Temporal liveness of one tracked face: passive scores over the visit plus, if asked, a blink.

``BlinkLiveness`` implements ``TrackLiveness`` (daemon/vision/liveness_types.py) for the door policies
``passive`` (require_blink=False) and ``passive+blink``. Per frame it is given the BlazeFace face and
the passive score of that frame (or None); it crops the face for the face mesh itself, measures both
eyes' openness with the iris model (daemon/vision/eyes.py) and looks for a blink:

* the open level of each eye is the median of its last ``baseline_samples`` open readings;
* a blink starts when *both* eyes read below ``closed_ratio`` × their open level (one eye alone — a
  wink, a landmark glitch — is not a blink) after at least ``min_open_samples`` open readings;
* it counts once both eyes are back above ``open_ratio`` × their open level within ``max_closed``
  seconds of the start; eyes closed longer (or a face that stays closed) is not a blink.

Everything is in seconds of the caller's clock, never in frames, so a missed frame (the detector lost
the face for a moment, a frame dropped) only removes one reading. Frames where the mesh does not see a
face (presence below ``min_presence``) give no reading. A still photo or screen shows eyes whose
openness changes only by noise, so it never produces the close-then-reopen sequence.

The verdict is ``live`` once the evidence is complete (enough passive scores with a mean of at least
``passive_min_score``, and the blink if required), ``spoof`` once ``time_limit`` seconds have passed
since the first frame without it, with the reasons of what was missing; both are final.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daemon.vision.eyes import EyeModel, EyeOpenness
from daemon.vision.face_mesh import FaceMesh
from daemon.vision.liveness_types import LivenessVerdict
from daemon.vision.models import resolve_model
from daemon.vision.runtime import load_interpreter
from daemon.vision.types import Face


def load_landmark_models(models_dir: Path, num_threads: int = 1) -> tuple[FaceMesh, EyeModel]:
    """The face mesh and iris models (sha256 checked), for one thread: share them among that thread's
    BlinkLiveness instances, never across threads."""
    return (
        FaceMesh(load_interpreter(resolve_model(models_dir, "face_mesh"), num_threads)),
        EyeModel(load_interpreter(resolve_model(models_dir, "iris"), num_threads)),
    )


@dataclass(frozen=True)
class BlinkSettings:
    """The knobs of BlinkLiveness; defaults live in daemon/config.py (section ``blink``)."""

    time_limit: float  # seconds from the first frame until the answer is spoof
    passive_min_score: float  # mean passive score needed (0–100)
    passive_min_frames: int  # passive scores needed before the mean counts
    closed_ratio: float  # an eye reads closed below this share of its open level
    open_ratio: float  # …and open again above this share
    max_closed: float  # seconds a blink may keep the eyes closed
    min_open_samples: int  # open readings needed before a blink can start
    baseline_samples: int  # open readings the open level is the median of
    min_presence: float  # face-mesh presence below which a frame gives no reading

    def __post_init__(self) -> None:
        if not 0.0 < self.closed_ratio < self.open_ratio <= 1.0:
            raise ValueError("need 0 < closed_ratio < open_ratio <= 1")
        if self.time_limit <= 0 or self.max_closed <= 0:
            raise ValueError("time_limit and max_closed must be > 0")
        if self.min_open_samples < 1 or self.baseline_samples < 1 or self.passive_min_frames < 0:
            raise ValueError("sample counts must be positive")


class BlinkDetector:
    """The open → both closed → open sequence over a track's eye readings (no model, pure state)."""

    def __init__(self, settings: BlinkSettings) -> None:
        self.settings = settings
        self._open: tuple[deque[float], deque[float]] = (
            deque(maxlen=settings.baseline_samples),
            deque(maxlen=settings.baseline_samples),
        )
        self._closed_since: float | None = None
        self.blinks: list[float] = []  # times the eyes reopened after a blink

    def levels(self) -> tuple[float, float] | None:
        """Each eye's open level, once there are enough open readings."""
        if len(self._open[0]) < self.settings.min_open_samples:
            return None
        return statistics.median(self._open[0]), statistics.median(self._open[1])

    def add(self, t: float, eyes: EyeOpenness) -> None:
        s = self.settings
        levels = self.levels()
        readings = (eyes.right, eyes.left)
        if levels is None:
            self._remember_open(readings)
            return
        both_closed = all(r < s.closed_ratio * lvl for r, lvl in zip(readings, levels, strict=True))
        both_open = all(r >= s.open_ratio * lvl for r, lvl in zip(readings, levels, strict=True))
        if self._closed_since is None:
            if both_closed:
                self._closed_since = t
            elif both_open:
                self._remember_open(readings)
            return
        if t - self._closed_since > s.max_closed:
            # Closed (or half closed) for too long: not a blink. Start over from the next open reading.
            if both_open:
                self._closed_since = None
                self._remember_open(readings)
            return
        if both_open:
            self.blinks.append(t)
            self._closed_since = None
            self._remember_open(readings)

    def _remember_open(self, readings: tuple[float, float]) -> None:
        self._open[0].append(readings[0])
        self._open[1].append(readings[1])


class BlinkLiveness:
    """TrackLiveness for one door visit: passive scores, and a blink when ``require_blink``."""

    def __init__(
        self, mesh: FaceMesh, eyes: EyeModel, settings: BlinkSettings, require_blink: bool = True
    ) -> None:
        self.settings = settings
        self.require_blink = require_blink
        self._mesh = mesh
        self._eyes = eyes
        self._blink = BlinkDetector(settings)
        self._start: float | None = None
        self._passive: list[float] = []
        self._frames = 0
        self._readings = 0
        self._final: LivenessVerdict | None = None

    @property
    def blinks(self) -> list[float]:
        return list(self._blink.blinks)

    def observe(self, t: float, frame_bgr: np.ndarray, face: Face, passive_score: float | None) -> None:
        if self._final is not None:
            return
        if self._start is None:
            self._start = t
        self._frames += 1
        if passive_score is not None:
            self._passive.append(float(passive_score))
        if not self.require_blink or self._blink.blinks:
            return  # the blink is not needed, or already seen: no more landmark work
        try:
            mesh = self._mesh.mesh(frame_bgr, face)
            if mesh.presence < self.settings.min_presence:
                return  # the mesh sees no face in the crop: no reading from this frame
            eyes = self._eyes.openness(frame_bgr, mesh.points)
        except ValueError:
            return  # a degenerate box or eye: no reading from this frame
        self._readings += 1
        self._blink.add(t, eyes)

    def verdict(self, t: float) -> LivenessVerdict:
        if self._final is not None:
            return self._final
        passive = statistics.fmean(self._passive) if self._passive else None
        if self._start is None:
            return LivenessVerdict("pending", None, "no frames yet")
        missing = self._missing(passive)
        if not missing:
            self._final = LivenessVerdict("live", passive, self._evidence())
            return self._final
        if t - self._start >= self.settings.time_limit:
            self._final = LivenessVerdict("spoof", passive, "; ".join(missing))
            return self._final
        return LivenessVerdict("pending", passive, "waiting: " + "; ".join(missing))

    def _missing(self, passive: float | None) -> list[str]:
        s = self.settings
        limit = f"{s.time_limit:.1f} s"
        missing = []
        if self.require_blink and not self._blink.blinks:
            if self._readings == 0:
                missing.append(f"no eye landmarks within {limit}")
            else:
                missing.append(f"no blink within {limit}")
        if passive is None:
            missing.append(f"no passive score within {limit}")
        elif passive < s.passive_min_score:
            missing.append(f"passive score {passive:.0f} < {s.passive_min_score:.0f}")
        elif len(self._passive) < s.passive_min_frames:
            missing.append(f"{len(self._passive)} passive scores < {s.passive_min_frames}")
        return missing

    def _evidence(self) -> str:
        parts = [f"passive score {statistics.fmean(self._passive):.0f} over {len(self._passive)} frames"]
        if self.require_blink:
            parts.append(f"blink at {self._blink.blinks[0] - (self._start or 0.0):.2f} s")
        return "; ".join(parts)
