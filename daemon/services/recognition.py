"""1:1 compare (device API 3.1) and 1:N search (3.2).

Scores come from the one ScoreMapping (config ``scores.anchors``). A search turns each searched
group's groupScore into a largest distance and hands the index one (group mask, distance) pair per
distinct score, so a face passes when its score reaches the lowest groupScore among the searched
groups it is bound to (DEVICE_API.md 3.2, Decision). The image work and the index search run as one
job in the inference pool; only the hits' details are read from SQLite afterwards.

With livenessEnabled, each image's largest face is also judged by the passive liveness models
(``judge_liveness``: live / spoof / no_context, config ``liveness``); in 3.2 a face not judged live
matches nobody (the index is not searched), in 3.1 the verdict is reported per image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from daemon.config import LibraryConfig, LivenessConfig
from daemon.library.types import FaceDetail, thresholds_by_score
from daemon.services.enrollment import analyze_field, device_limits
from daemon.services.face_errors import LivenessUnavailable, ModelMismatch
from daemon.services.library_service import LibraryService
from daemon.services.scores import ScoreMapping
from daemon.services.workers import InferencePool
from daemon.vision.embed import descriptor_distance
from daemon.vision.engine import FaceAnalysis, VisionEngine
from daemon.vision.image import ImageLimits
from daemon.vision.liveness import context_of

MAX_TOP_N = 5


def recognition_limits(library: LibraryConfig, max_decode_bytes: int | None = None) -> ImageLimits:
    """The enrollment limits without the 100×100 minimum (DEVICE_API.md states it for enrollment
    only): a terminal may send a tight face crop; too small to hold a face is then FACE_NOT_FOUND."""
    return replace(device_limits(library, max_decode_bytes), min_side=(1, 1))


@dataclass(frozen=True)
class Detection:
    """detectionResult: the face box clipped to the image, pose in whole degrees, blur, quality."""

    left: int
    top: int
    right: int
    bottom: int
    roll: int
    yaw: int
    pitch: int
    blurness: float  # 0 sharp … 100 blurry
    quality: float  # 0 … 1, higher is better
    liveness_score: float | None = None  # 0 … 100, higher = more likely live; None: not asked
    liveness: str | None = None  # "live", "spoof" or "no_context"; None: not asked

    @property
    def is_live(self) -> bool:
        return self.liveness == "live"


@dataclass(frozen=True)
class CompareResult:
    score: float
    first: Detection
    second: Detection


@dataclass(frozen=True)
class SearchHit:
    score: float
    face: FaceDetail


@dataclass(frozen=True)
class SearchResult:
    detection: Detection
    hits: list[SearchHit]  # best first, at most top_n
    feature: list[float] | None  # the query embedding, when asked for


class RecognitionService:
    def __init__(
        self,
        pool: InferencePool[VisionEngine],
        library: LibraryService,
        scores: ScoreMapping,
        limits: ImageLimits,
        liveness: LivenessConfig | None = None,
    ) -> None:
        self._pool = pool
        self._library = library
        self._scores = scores
        self._limits = limits
        self._liveness = liveness if liveness is not None and liveness.enabled else None

    def _liveness_policy(self, requested: bool) -> LivenessConfig | None:
        """The settings to judge liveness with, None when not requested; LivenessUnavailable when
        requested from a device whose liveness is disabled."""
        if not requested:
            return None
        if self._liveness is None:
            raise LivenessUnavailable()
        return self._liveness

    async def compare(self, image1: str, image2: str, liveness: bool = False) -> CompareResult:
        """Score of the largest face of each image. Raises LivenessUnavailable, ImageError,
        NoFaceDetected, Overloaded."""
        policy = self._liveness_policy(liveness)
        limits = self._limits

        def job(engine: VisionEngine) -> tuple[FaceAnalysis, Detection, FaceAnalysis, Detection]:
            a, det_a = _analyze(engine, image1, "image1", limits, policy)
            b, det_b = _analyze(engine, image2, "image2", limits, policy)
            return a, det_a, b, det_b

        a, det_a, b, det_b = await self._pool.run(job)
        distance = descriptor_distance(a.embedding, b.embedding)
        return CompareResult(score=float(self._scores.score(distance)), first=det_a, second=det_b)

    async def search(
        self,
        image: str,
        group_ids: Sequence[str],
        top_n: int = 1,
        liveness: bool = False,
        feature_upload: bool = False,
    ) -> SearchResult:
        """The best ``top_n`` faces of the given groups that pass their groups' thresholds.

        Raises LivenessUnavailable, GroupNotFound (before any image work), ImageError,
        NoFaceDetected, ModelMismatch, Overloaded.
        """
        if not 1 <= top_n <= MAX_TOP_N:
            raise ValueError(f"top_n must be 1..{MAX_TOP_N}")
        policy = self._liveness_policy(liveness)
        refs = await self._library.resolve_groups(group_ids)
        pairs = [(mask, self._scores.max_distance(score)) for mask, score in thresholds_by_score(refs)]
        limits, index, model_id = self._limits, self._library.index, self._library.model_id

        def job(engine: VisionEngine) -> tuple[Detection, list[tuple[int, float]], np.ndarray]:
            analysis, detection = _analyze(engine, image, "image", limits, policy)
            if engine.embedder.model_id != model_id:
                raise ModelMismatch(engine.embedder.model_id, model_id)
            if policy is not None and not detection.is_live:
                return detection, [], analysis.embedding  # a face judged not live matches nobody
            return detection, index.search(analysis.embedding, pairs, top_n), analysis.embedding

        detection, found, embedding = await self._pool.run(job)
        details = {face.id: face for face in await self._library.faces_by_ids([i for i, _ in found])}
        hits = [
            SearchHit(score=float(self._scores.score(dist)), face=details[face_id])
            for face_id, dist in found
            if face_id in details  # deleted between the search and the lookup: not a hit
        ]
        feature = [float(v) for v in embedding] if feature_upload else None
        return SearchResult(detection=detection, hits=hits, feature=feature)


def judge_liveness(
    engine: VisionEngine, rgb: np.ndarray, analysis: FaceAnalysis, policy: LivenessConfig
) -> tuple[float, str]:
    """livenessScore and verdict of the analysed face. An image spanning fewer than
    ``policy.min_context`` face sizes (a tight crop) has too little context for the models: score 0,
    "no_context" (fail closed: never a live verdict the models cannot back)."""
    if engine.liveness is None:
        raise LivenessUnavailable()
    if context_of(rgb, analysis.face) < policy.min_context:
        return 0.0, "no_context"
    score = engine.liveness_score(rgb[..., ::-1], analysis.face)
    return score, "live" if score >= policy.min_score else "spoof"


def _analyze(
    engine: VisionEngine, text: str, field: str, limits: ImageLimits, policy: LivenessConfig | None = None
) -> tuple[FaceAnalysis, Detection]:
    """Decode one image field and analyse its largest face (NoFaceDetected names the field); with a
    liveness policy, judge its liveness too."""
    _, image, analysis = analyze_field(engine, text, field, limits)
    liveness_score, liveness = judge_liveness(engine, image.rgb, analysis, policy) if policy else (None, None)
    left, top, right, bottom = image.to_source(analysis.face.clipped_box(image.width, image.height))
    q = analysis.quality
    detection = Detection(
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        roll=round(q.roll),
        yaw=round(q.yaw),
        pitch=round(q.pitch),
        blurness=float(q.blurness),
        quality=float(q.quality),
        liveness_score=liveness_score,
        liveness=liveness,
    )
    return analysis, detection
