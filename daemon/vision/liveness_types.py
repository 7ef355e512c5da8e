"""The contract between liveness checks and their users (the device API, the door pipeline).

Two kinds of check:
- a *passive* check scores one face in one image (0–100, higher = more likely a live face), with no
  memory: ``PassiveLiveness.score``;
- a *track* check watches one tracked face over time (a door visit) and combines per-frame passive
  scores with temporal cues a photo or a still screen lacks (a blink, non-rigid motion):
  ``TrackLiveness.observe`` per frame, ``TrackLiveness.verdict`` whenever the caller needs to decide.

A track check never invents evidence: with no frames, or frames that show no cue, it stays
``pending`` until its time limit, then answers ``spoof`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from daemon.vision.types import Face

LivenessState = Literal["live", "spoof", "pending"]


@dataclass(frozen=True)
class LivenessVerdict:
    """What a liveness check says now: state, the combined 0–100 score if any, and why."""

    state: LivenessState
    score: float | None
    reason: str


class PassiveLiveness(Protocol):
    """Scores one face of one BGR image; 0–100, higher = more likely live."""

    def score(self, image_bgr: np.ndarray, face: Face) -> float: ...


class TrackLiveness(Protocol):
    """Liveness of one tracked face over a visit; one instance per track, used from one thread."""

    def observe(self, t: float, frame_bgr: np.ndarray, face: Face, passive_score: float | None) -> None:
        """One frame of the track at time ``t`` (seconds, monotonic or video time)."""
        ...

    def verdict(self, t: float) -> LivenessVerdict:
        """The decision so far at time ``t``: ``pending`` until the evidence or the time limit decides."""
        ...
