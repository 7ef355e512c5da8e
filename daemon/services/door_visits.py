"""The door's decision rules, apart from the image work: one Visit per track, one decision per visit,
one event per person per visit (cooldown).

A visit collects what recognition said about its frames: the best hit in the door's groups, hits on
known faces outside them, the number of usable frames, and the track's liveness check. ``decide``
turns that into granted / denied / unknown or "not yet":

* granted: a face reached its group's score and, when the policy requires it, liveness said live;
* denied: a known face outside the door's groups (two frames agreeing, or one at the end), a face
  that failed liveness, or a door that requires a liveness check it does not have;
* unknown: after ``decision_timeout`` of usable frames (or when the track ends) with nothing
  reaching a score, if the face was usable on at least ``unknown_min_frames`` frames.

Cooldown: a person (face id) who got an event is remembered with the time they were last seen;
a new track of the same person within ``cooldown`` of that is decided silently (suppressed). Unknown
faces have no id: their embeddings are remembered instead and a new unknown track close to one of
them (the same-person distance) is the same stranger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from daemon.vision.embed import descriptor_distance
from daemon.vision.liveness_types import TrackLiveness

SAME_STRANGER_DISTANCE = 0.6  # dlib's same-person distance
MAX_STRANGERS = 1000  # strangers remembered at most (a crowd within one cooldown)
OUTSIDE_CONFIRM_FRAMES = 2


@dataclass
class Visit:
    track_id: int
    first_seen: float
    last_seen: float
    liveness: TrackLiveness | None = None
    first_usable: float | None = None
    usable: int = 0
    door_hit: tuple[int, float] | None = None  # (face id, score), the best so far
    outside_hits: dict[int, list[float]] = field(default_factory=dict)  # face id → scores
    best_score: float | None = None  # best score against anyone (for unknown events: tuning)
    best_quality: float = -1.0
    best_crop: np.ndarray | None = None  # RGB crop of the best-quality usable frame
    embedding: np.ndarray | None = None  # the latest usable embedding
    passive: list[float] = field(default_factory=list)
    decided: bool = False
    verify_at: float = 0.0  # next identity re-check of a decided visit
    identity: int | None = None  # face id once decided (cooldown refresh while lingering)


@dataclass(frozen=True)
class Outcome:
    decision: str  # granted | denied | unknown | suppressed
    reason: str
    face_id: int | None
    score: float | None
    liveness_score: float | None


@dataclass(frozen=True)
class Rules:
    cooldown: float
    decision_timeout: float
    unknown_min_frames: int
    liveness_required: bool
    liveness_unavailable: str | None  # the reason, when required but not installed


class Memory:
    """Who had an event recently: face id → last seen; stranger embeddings → last seen."""

    def __init__(self) -> None:
        self.known: dict[int, float] = {}
        self.strangers: list[tuple[np.ndarray, float]] = []

    def seen_known(self, face_id: int, t: float) -> None:
        self.known[face_id] = max(t, self.known.get(face_id, t))

    def known_recently(self, face_id: int, t: float, cooldown: float) -> bool:
        last = self.known.get(face_id)
        return last is not None and t - last <= cooldown

    def stranger_index(self, embedding: np.ndarray, t: float, cooldown: float) -> int | None:
        self.strangers = [(e, last) for e, last in self.strangers if t - last <= cooldown]
        for i, (known, _) in enumerate(self.strangers):
            if descriptor_distance(known, embedding) <= SAME_STRANGER_DISTANCE:
                return i
        return None

    def seen_stranger(self, embedding: np.ndarray, t: float, cooldown: float) -> None:
        i = self.stranger_index(embedding, t, cooldown)
        if i is None:
            self.strangers.append((embedding, t))
            del self.strangers[:-MAX_STRANGERS]
        else:
            self.strangers[i] = (self.strangers[i][0], t)

    def forget_before(self, t: float, cooldown: float) -> None:
        self.known = {k: last for k, last in self.known.items() if t - last <= cooldown}


def decide(visit: Visit, t: float, rules: Rules, memory: Memory, final: bool) -> Outcome | None:
    """The visit's outcome now, or None to keep looking. Marks the visit decided."""
    outcome = _outcome(visit, t, rules, memory, final)
    if outcome is None:
        return None
    visit.decided = True
    visit.verify_at = t + 1.0
    visit.identity = outcome.face_id
    if outcome.face_id is not None:
        memory.seen_known(outcome.face_id, t)
    elif visit.embedding is not None:
        memory.seen_stranger(visit.embedding, t, rules.cooldown)
    return outcome


def _outcome(visit: Visit, t: float, rules: Rules, memory: Memory, final: bool) -> Outcome | None:
    if visit.first_usable is None:
        return Outcome("suppressed", "never usable", None, None, None) if final else None
    timed_out = final or t - visit.first_usable >= rules.decision_timeout
    if visit.door_hit is not None:
        face_id, score = visit.door_hit
        if memory.known_recently(face_id, t, rules.cooldown):
            return Outcome("suppressed", "cooldown", face_id, score, None)
        if not rules.liveness_required:
            return Outcome("granted", "recognised", face_id, score, _mean(visit.passive))
        if rules.liveness_unavailable is not None or visit.liveness is None:
            return Outcome(
                "denied", rules.liveness_unavailable or "liveness not available", face_id, score, None
            )
        verdict = visit.liveness.verdict(t)
        if verdict.state == "live":
            return Outcome("granted", f"recognised, live ({verdict.reason})", face_id, score, verdict.score)
        if verdict.state == "spoof":
            return Outcome("denied", f"liveness failed: {verdict.reason}", face_id, score, verdict.score)
        if timed_out:
            return Outcome("denied", f"liveness undecided: {verdict.reason}", face_id, score, verdict.score)
        return None
    outside = max(visit.outside_hits.items(), key=lambda kv: (len(kv[1]), max(kv[1])), default=None)
    if outside is not None and (len(outside[1]) >= OUTSIDE_CONFIRM_FRAMES or timed_out):
        face_id, scores = outside
        if memory.known_recently(face_id, t, rules.cooldown):
            return Outcome("suppressed", "cooldown", face_id, max(scores), None)
        return Outcome("denied", "not in the door's groups", face_id, max(scores), _mean(visit.passive))
    if not timed_out:
        return None
    if visit.usable < rules.unknown_min_frames:
        return Outcome("suppressed", "too few usable frames", None, None, None) if final else None
    if visit.embedding is not None and memory.stranger_index(visit.embedding, t, rules.cooldown) is not None:
        return Outcome("suppressed", "cooldown", None, visit.best_score, None)
    return Outcome("unknown", "no face reached a score", None, visit.best_score, _mean(visit.passive))


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None
