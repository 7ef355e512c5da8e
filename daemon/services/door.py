"""The door pipeline: detect → track → usable frames per track → embed → 1:N search → liveness →
one decision per visit (rules in door_visits.py).

Synchronous and single-threaded on purpose: the live door runs it in its own thread with its own
engine (daemon/services/door_service.py), and ``facegate checkin-video`` runs the very same object on
the frames of a file, so a door can be tuned and evaluated on recorded footage.

Detection runs at most ``detect_fps`` while someone is in view and ``idle_detect_fps`` otherwise
(decided from the frame timestamps, so a file gives the same decisions as a camera at its rate).
A face is embedded only while its track is undecided and only when the frame is usable: wide
enough, pose within limits (from the keypoints, before any embedding), sharp enough.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from daemon.camera.tracker import FaceTracker, TrackerConfig
from daemon.config import CheckinConfig
from daemon.library.errors import GroupNotFound
from daemon.library.events import NewEvent
from daemon.library.store import FaceStore
from daemon.library.types import DEFAULT_SCORE, GroupRef, thresholds_by_score
from daemon.services.door_liveness import LivenessPolicy, LivenessSettings, build_policy
from daemon.services.door_visits import SAME_STRANGER_DISTANCE, Memory, Rules, Visit, decide
from daemon.services.scores import ScoreMapping
from daemon.vision.blink import BlinkSettings
from daemon.vision.boxes import box_iou
from daemon.vision.embed import descriptor_distance
from daemon.vision.engine import VisionEngine
from daemon.vision.image import encode_jpeg
from daemon.vision.quality import estimate_pose
from daemon.vision.types import Face

log = logging.getLogger(__name__)

GROUPS_REFRESH_SECONDS = 2.0  # group scores and bindings are re-read this often
VERIFY_SECONDS = 1.0  # a decided track's face is re-checked this often (a track may switch people)
# People at a door move slowly: a stricter association than the blur stream's (which must never lose a
# face, at the price of sometimes handing a track to a neighbour) keeps one track per person.
DOOR_TRACKER = TrackerConfig(hold_seconds=1.0, centre_gate=0.5, centre_gate_growth=1.0)
SNAPSHOT_PAD = 0.3  # share of the face box added on each side of a snapshot crop


@dataclass(frozen=True)
class DoorDecision:
    event: NewEvent
    snapshot: bytes | None  # the face crop as JPEG, when the snapshot policy keeps it
    first_usable: float | None  # capture time of the visit's first usable frame (latency)


class DoorPipeline:
    def __init__(
        self,
        engine: VisionEngine,
        store: FaceStore,
        scores: ScoreMapping,
        settings: CheckinConfig,
        blink: BlinkSettings | None = None,
        models_dir: Path | None = None,
    ) -> None:
        """``blink`` (config section blink) and ``models_dir``: for the passive+blink policy."""
        self._engine = engine
        self._blink = blink
        self._models_dir = models_dir
        self._store = store
        self._scores = scores
        self._tracker = FaceTracker(DOOR_TRACKER)
        self._visits: dict[int, Visit] = {}
        self._memory = Memory()
        self._next_due = float("-inf")
        self._groups_at = float("-inf")
        self._refs: list[GroupRef] = []
        self.missing_groups: list[str] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.detect_ms: collections.deque[float] = collections.deque(maxlen=100)
        self.settings = settings
        self.policy: LivenessPolicy = self._build_policy(settings)

    # -- settings ------------------------------------------------------------------------------

    def apply(self, settings: CheckinConfig) -> None:
        """New settings from the next frame on (called from the pipeline's own thread)."""
        self.policy = self._build_policy(settings)
        self.settings = settings
        self._groups_at = float("-inf")
        for visit in self._visits.values():  # open visits continue under the new policy
            if not visit.decided:
                visit.liveness = self.policy.new_track() if self.policy.new_track else None

    def _build_policy(self, settings: CheckinConfig) -> LivenessPolicy:
        policy = build_policy(
            settings.liveness,
            self._engine,
            LivenessSettings(
                settings.liveness_min_score,
                settings.liveness_frames,
                settings.decision_timeout,
                self._blink,
                self._models_dir,
            ),
        )
        if not policy.available:
            log.warning("door: liveness policy %r refuses every grant: %s", policy.name, policy.unavailable)
        return policy

    def _rules(self) -> Rules:
        s, p = self.settings, self.policy
        return Rules(s.cooldown, s.decision_timeout, s.unknown_min_frames, p.required, p.unavailable)

    # -- frames --------------------------------------------------------------------------------

    def due(self, t: float) -> bool:
        """Should the frame captured at ``t`` be processed? (Rate limit; callers may skip it.)"""
        return t >= self._next_due

    def process(self, rgb: np.ndarray, t: float, wall: float) -> list[DoorDecision]:
        """One frame (RGB, capture time ``t`` in seconds, ``wall`` its epoch time for events)."""
        if not self.due(t):
            return []
        s = self.settings
        rate = s.detect_fps if self._tracker.track_count else s.idle_detect_fps
        self._next_due = t + 1.0 / rate - 1e-3  # a little slack for capture jitter
        self._refresh_groups(t)
        started = time.monotonic()
        faces = self._engine.detect(rgb, s.detector)
        self.detect_ms.append((time.monotonic() - started) * 1000)
        self.counts["frames"] += 1
        self._tracker.update([(*f.box, f.score) for f in faces], t)
        decisions: list[DoorDecision] = []
        bgr: list[np.ndarray] = []  # converted once, only if a liveness check wants it
        for track_id, face in self._assign(faces, t):
            visit = self._visits.get(track_id)
            if visit is None:
                visit = Visit(track_id, t, t, self.policy.new_track() if self.policy.new_track else None)
                self._visits[track_id] = visit
            visit.last_seen = t
            if visit.decided and t >= visit.verify_at and not self._same_person(visit, rgb, face, t):
                visit = Visit(track_id, t, t, self.policy.new_track() if self.policy.new_track else None)
                self._visits[track_id] = visit  # another person took over the track: a new visit
            if visit.decided:
                if visit.identity is not None:
                    self._memory.seen_known(visit.identity, t)
                elif visit.embedding is not None:
                    self._memory.seen_stranger(visit.embedding, t, s.cooldown)
                continue
            self._observe(visit, rgb, bgr, face, t)
            decisions.extend(self._decide(visit, t, wall, final=False))
        alive = {view.id for view in self._tracker.tracks()}
        for track_id, visit in list(self._visits.items()):
            if track_id not in alive:
                if not visit.decided:
                    decisions.extend(self._decide(visit, t, wall, final=True))
                del self._visits[track_id]
            elif not visit.decided and visit.last_seen != t:
                decisions.extend(self._decide(visit, t, wall, final=False))
        self._memory.forget_before(t, s.cooldown)
        return decisions

    def finish(self, t: float, wall: float) -> list[DoorDecision]:
        """End of input: decide every open visit (the offline tool calls it at the end of a file)."""
        decisions: list[DoorDecision] = []
        for visit in self._visits.values():
            if not visit.decided:
                decisions.extend(self._decide(visit, t, wall, final=True))
        self._visits.clear()
        return decisions

    def status(self) -> dict[str, Any]:
        detect = list(self.detect_ms)
        return {
            "tracks": self._tracker.track_count,
            "open_visits": sum(not v.decided for v in list(self._visits.values())),  # another thread
            "events": {k: self.counts[k] for k in ("granted", "denied", "unknown", "suppressed", "ignored")},
            "frames_processed": self.counts["frames"],
            "embeddings": self.counts["embeddings"],
            "detection_ms": round(sum(detect) / len(detect), 1) if detect else None,
            "groups": list(self.settings.groups),
            "missing_groups": list(self.missing_groups),
            "liveness": {
                "policy": self.policy.name,
                "available": self.policy.available,
                "reason": self.policy.unavailable,
            },
        }

    # -- steps ---------------------------------------------------------------------------------

    def _assign(self, faces: list[Face], t: float) -> list[tuple[int, Face]]:
        """Which track each detection went to: the tracks updated at ``t``, by best IoU."""
        updated = [v for v in self._tracker.tracks() if v.last_seen == t]
        pairs = sorted(
            ((box_iou(f.box, v.box), i, v.id) for i, f in enumerate(faces) for v in updated), reverse=True
        )
        out: list[tuple[int, Face]] = []
        used_faces: set[int] = set()
        used_tracks: set[int] = set()
        for iou, i, track_id in pairs:
            if iou <= 0 or i in used_faces or track_id in used_tracks:
                continue
            used_faces.add(i)
            used_tracks.add(track_id)
            out.append((track_id, faces[i]))
        return out

    def _same_person(self, visit: Visit, rgb: np.ndarray, face: Face, t: float) -> bool:
        """Is the decided visit's face still the person it was decided for? (Once per VERIFY_SECONDS,
        on usable frames only; a visit without an embedding cannot be checked.)"""
        if visit.embedding is None or not self._usable(face):
            return True
        visit.verify_at = t + VERIFY_SECONDS
        analysis = self._engine.analyze(rgb, face)
        self.counts["embeddings"] += 1
        if analysis.quality.blurness > self.settings.max_blurness:
            return True
        same = descriptor_distance(visit.embedding, analysis.embedding) <= SAME_STRANGER_DISTANCE
        if not same:
            self.counts["track_switches"] += 1
        return same

    def _usable(self, face: Face) -> bool:
        s = self.settings
        if face.width < s.min_face_size:
            return False
        _, yaw, pitch = estimate_pose(face)
        return abs(yaw) <= s.max_yaw and abs(pitch) <= s.max_pitch

    def _observe(self, visit: Visit, rgb: np.ndarray, bgr: list[np.ndarray], face: Face, t: float) -> None:
        if not self._usable(face):
            return
        analysis = self._engine.analyze(rgb, face)
        self.counts["embeddings"] += 1
        quality = analysis.quality
        if quality.blurness > self.settings.max_blurness:
            return
        visit.usable += 1
        if visit.first_usable is None:
            visit.first_usable = t
        if quality.quality > visit.best_quality:
            visit.best_quality = quality.quality
            visit.best_crop = _crop(rgb, analysis.face)
        visit.embedding = analysis.embedding
        policy = self.policy
        passive = None
        if policy.required and policy.passive is not None:
            if not bgr:
                bgr.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            passive = float(policy.passive(bgr[0], analysis.face))
            visit.passive.append(passive)
        if visit.liveness is not None:
            if not bgr:
                bgr.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            visit.liveness.observe(t, bgr[0], analysis.face, passive)
        self._search(visit, analysis.embedding)

    def _search(self, visit: Visit, embedding: np.ndarray) -> None:
        index = self._store.index
        if index is None or len(index) == 0:
            return
        scores = self._scores
        pairs = [(mask, scores.max_distance(score)) for mask, score in thresholds_by_score(self._refs)]
        hits = index.search(embedding, pairs, 1) if pairs else []
        nearest = index.nearest(embedding, None, 1)
        if nearest:
            best = round(float(scores.score(nearest[0][1])), 1)
            visit.best_score = best if visit.best_score is None else max(visit.best_score, best)
        if hits:
            face_id, dist = hits[0]
            score = round(float(scores.score(dist)), 1)
            if visit.door_hit is None or score > visit.door_hit[1]:
                visit.door_hit = (face_id, score)
            return
        known_at = min((r.score for r in self._refs), default=DEFAULT_SCORE)
        if nearest:
            face_id, dist = nearest[0]
            score = round(float(scores.score(dist)), 1)
            if score >= known_at:
                visit.outside_hits.setdefault(face_id, []).append(score)

    def _decide(self, visit: Visit, t: float, wall: float, final: bool) -> list[DoorDecision]:
        outcome = decide(visit, t, self._rules(), self._memory, final)
        if outcome is None:
            return []
        if outcome.decision == "suppressed":  # a repeat visit (cooldown), or a glimpse ("ignored")
            self.counts["suppressed" if outcome.reason == "cooldown" else "ignored"] += 1
            return []
        self.counts[outcome.decision] += 1
        token = name = None
        groups: list[str] = []
        if outcome.face_id is not None:
            details = self._store.faces_by_ids([outcome.face_id])
            if details:
                detail = details[0]
                token, name = detail.face_token, detail.name
                door = set(self.settings.groups)
                groups = (
                    [g for g in detail.group_ids if g in door]
                    if outcome.decision == "granted"
                    else list(detail.group_ids)
                )
        event = NewEvent(
            time=wall,
            camera=self.settings.camera_name,
            decision=outcome.decision,
            reason=outcome.reason,
            track_id=visit.track_id,
            face_token=token,
            name=name,
            groups=groups,
            score=outcome.score,
            liveness_score=outcome.liveness_score,
            quality=round(visit.best_quality, 3) if visit.best_quality >= 0 else None,
        )
        return [DoorDecision(event, self._snapshot(visit, outcome.decision), visit.first_usable)]

    def _snapshot(self, visit: Visit, decision: str) -> bytes | None:
        policy = self.settings.snapshots
        if visit.best_crop is None or policy == "none" or (policy == "known" and decision == "unknown"):
            return None
        return encode_jpeg(visit.best_crop, self.settings.snapshot_quality)

    def _refresh_groups(self, t: float) -> None:
        if abs(t - self._groups_at) < GROUPS_REFRESH_SECONDS:
            return
        self._groups_at = t
        refs: list[GroupRef] = []
        missing: list[str] = []
        for group_id in self.settings.groups:
            try:
                refs.extend(self._store.resolve_groups([group_id]))
            except GroupNotFound:
                missing.append(group_id)
        if missing and missing != self.missing_groups:
            log.warning("door: groups not in the library (nobody is granted through them): %s", missing)
        self._refs, self.missing_groups = refs, missing


def _crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = face.box
    pad_x, pad_y = (x2 - x1) * SNAPSHOT_PAD, (y2 - y1) * SNAPSHOT_PAD
    left, top = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
    right, bottom = min(width, int(x2 + pad_x)), min(height, int(y2 + pad_y))
    return np.ascontiguousarray(rgb[top:bottom, left:right])
