"""The door's liveness policies: a registry by name ("off", "passive", "passive+blink").

A policy turns the engine the door thread owns into a factory of per-track checks
(daemon/vision/liveness_types.TrackLiveness), or says why it cannot (the check is not installed).
The door never names a concrete check: it asks :func:`build_policy` for the configured name.

Plugging in a check is one line in ``POLICIES``:

* "passive" is available as soon as the engine has ``liveness_score(image_bgr, face) -> float``
  (the passive model); :class:`PassiveTrackLiveness` averages it over a few frames;
* "passive+blink": the blink check (daemon/vision/blink.BlinkLiveness, with the face-mesh and iris
  models loaded once per policy, in the door thread) on top of the passive model's scores; available
  when both are installed.

Until then a door that requires them refuses every grant with the reason ("liveness not available")
and says so at start and in /health.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from daemon.config import BlinkConfig, CheckinConfig
from daemon.vision.blink import BlinkLiveness, BlinkSettings, load_landmark_models
from daemon.vision.liveness_types import LivenessVerdict, PassiveLiveness, TrackLiveness
from daemon.vision.types import Face

log = logging.getLogger(__name__)
TrackFactory = Callable[[], TrackLiveness]
PassiveFn = Callable[[np.ndarray, Face], float]


@dataclass(frozen=True)
class LivenessSettings:
    min_score: float = 50.0  # passive: mean score to count as live
    frames: int = 3  # passive: frames averaged
    timeout: float = 3.0  # seconds without a verdict: spoof
    blink: BlinkSettings | None = None  # passive+blink: config section ``blink``
    models_dir: Path | None = None  # where the face-mesh and iris models are


@dataclass(frozen=True)
class LivenessPolicy:
    """What the door needs: per-track checks, a passive scorer for the event's score, or why not."""

    name: str
    required: bool
    new_track: TrackFactory | None  # None: not available (or not required)
    passive: PassiveFn | None
    unavailable: str | None = None  # why it is not available

    @property
    def available(self) -> bool:
        return not self.required or self.new_track is not None


class PassiveTrackLiveness:
    """A track check from passive scores alone: live when the mean of the first ``frames`` scores
    reaches ``min_score``, spoof when it does not; pending before, spoof at the time limit."""

    def __init__(self, settings: LivenessSettings) -> None:
        self._settings = settings
        self._scores: list[float] = []
        self._started: float | None = None

    def observe(self, t: float, frame_bgr: np.ndarray, face: Face, passive_score: float | None) -> None:
        if self._started is None:
            self._started = t
        if passive_score is not None and len(self._scores) < self._settings.frames:
            self._scores.append(float(passive_score))

    def verdict(self, t: float) -> LivenessVerdict:
        s = self._settings
        if len(self._scores) >= s.frames:
            mean = sum(self._scores) / len(self._scores)
            if mean >= s.min_score:
                return LivenessVerdict("live", mean, f"passive {mean:.0f} >= {s.min_score:g}")
            return LivenessVerdict("spoof", mean, f"passive {mean:.0f} < {s.min_score:g}")
        if self._started is not None and t - self._started > s.timeout:
            return LivenessVerdict("spoof", None, "no liveness evidence in time")
        return LivenessVerdict("pending", None, "collecting frames")


def passive_scorer(engine: Any) -> PassiveFn | None:
    """The engine's passive liveness model, when it has one (the liveness issue adds it)."""
    if getattr(engine, "liveness", True) is None:  # a VisionEngine whose liveness is disabled
        return None
    method = getattr(engine, "liveness_score", None)
    return method if callable(method) else None


def _off(engine: Any, settings: LivenessSettings) -> LivenessPolicy:
    return LivenessPolicy("off", required=False, new_track=None, passive=passive_scorer(engine))


def _passive(engine: Any, settings: LivenessSettings) -> LivenessPolicy:
    scorer = passive_scorer(engine)
    if scorer is None:
        return LivenessPolicy(
            "passive", True, None, None, "liveness not available: no passive model installed"
        )
    return LivenessPolicy("passive", True, lambda: PassiveTrackLiveness(settings), scorer)


def _passive_blink(engine: Any, settings: LivenessSettings) -> LivenessPolicy:
    name = "passive+blink"
    scorer = passive_scorer(engine)
    if scorer is None:
        return LivenessPolicy(name, True, None, None, "liveness not available: no passive model installed")
    if settings.blink is None or settings.models_dir is None:
        return LivenessPolicy(name, True, None, scorer, "liveness not available: blink check not configured")
    try:
        mesh, eyes = load_landmark_models(settings.models_dir)
    except Exception as exc:  # boundary: a missing or corrupt model refuses grants, it does not crash
        log.error("blink check unavailable: %s", exc)
        return LivenessPolicy(name, True, None, scorer, f"liveness not available: blink models: {exc}")
    # One passive threshold for the door, whatever the policy: checkin.liveness_min_score / _frames.
    blink = replace(settings.blink, passive_min_score=settings.min_score, passive_min_frames=settings.frames)
    return LivenessPolicy(name, True, lambda: BlinkLiveness(mesh, eyes, blink, require_blink=True), scorer)


def blink_settings(blink: BlinkConfig, checkin: CheckinConfig) -> BlinkSettings:
    """The blink check's settings: section ``blink``, with the door's passive threshold."""
    return BlinkSettings(
        **asdict(blink),
        passive_min_score=checkin.liveness_min_score,
        passive_min_frames=checkin.liveness_frames,
    )


#: name → builder(engine, settings). One line per policy.
POLICIES: dict[str, Callable[[Any, LivenessSettings], LivenessPolicy]] = {
    "off": _off,
    "passive": _passive,
    "passive+blink": _passive_blink,
}


def build_policy(name: str, engine: Any, settings: LivenessSettings) -> LivenessPolicy:
    try:
        builder = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown liveness policy {name!r}") from None
    return builder(engine, settings)


__all__ = ["POLICIES", "LivenessPolicy", "LivenessSettings", "PassiveLiveness", "build_policy"]
