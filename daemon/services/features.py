"""The feature-vector use cases (FEATURE_API.md): extract a face's descriptor, compare two descriptors,
compare an image with a stored descriptor.

Integrators keep these vectors in their own databases, so a vector outlives the model that made it.
Every answer therefore names the model (``model``), and a request may name it back: a vector from
another model (or variant) is refused rather than compared, because distances between descriptors of
two different networks mean nothing. The similarity is the device API's calibrated score / 100
(daemon/services/scores.py), so 0.7 here and a groupScore of 70 there are the same decision.

The functions taking an engine run on a worker thread (app[POOL].run); the others are cheap (128
numbers) and may run anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from daemon.config import Config
from daemon.errors import FacegateError
from daemon.services.enrollment import EnrollmentSettings, device_limits
from daemon.services.scores import ScoreMapping
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of
from daemon.vision.engine import FaceAnalysis, VisionEngine
from daemon.vision.image import DecodedImage, ImageLimits, decode_image
from daemon.vision.quality import QualityThresholds, failed_checks

FEATURE_DIM = DESCRIPTOR_SIZE
FLOAT32_MAX = float(np.finfo(np.float32).max)


class FeatureInputError(FacegateError):
    """A feature vector or model name in a request cannot be used (the API answers 400)."""


class NoQualifiedFace(FacegateError):
    """The image holds no face the detector accepts (the API answers 400)."""


@dataclass(frozen=True)
class FeatureSettings:
    scores: ScoreMapping
    threshold: float  # similarity (0–1) at or above which two faces are the same person
    quality: QualityThresholds
    limits: ImageLimits
    model_id: str  # the model this daemon's engines embed with

    @classmethod
    def from_config(cls, config: Config) -> FeatureSettings:
        # Same image rules as the device API: integrators send the same photos to both.
        return cls(
            scores=ScoreMapping(config.scores.anchors),
            threshold=config.features.threshold,
            quality=EnrollmentSettings.from_config(config.library).thresholds,  # the enrollment gate
            limits=device_limits(config.library, config.limits.max_decode_bytes),
            model_id=model_id_of(config.models.embedding),
        )


@dataclass(frozen=True)
class Extraction:
    feature: list[float]
    model_id: str
    rect: tuple[int, int, int, int]  # left, top, right, bottom in pixels of the (upright) image
    quality_failed: list[str]  # names of the failed enrollment checks; empty: quality passed


@dataclass(frozen=True)
class Comparison:
    similarity: float  # 0–1, rounded to 4 decimals; the decision uses this rounded value
    distance: float  # Euclidean distance of the raw descriptors
    is_same_person: bool
    threshold: float


def check_model(model: object, expected: str) -> None:
    """Accept a request's optional ``model`` only when it names this daemon's model."""
    if model is None:
        return
    if not isinstance(model, str):
        raise FeatureInputError("model must be a string, e.g. the 'model' of /api/extract_feature")
    if model != expected:
        raise FeatureInputError(
            f"model mismatch: the feature was made by {model!r}, this device uses {expected!r}; "
            "features of different models cannot be compared (extract them again)"
        )


def parse_feature(value: object, name: str) -> np.ndarray:
    """A request's feature vector as float32 (FEATURE_DIM,), or FeatureInputError saying what is wrong."""
    if not isinstance(value, list):
        raise FeatureInputError(f"{name} must be a JSON array of {FEATURE_DIM} numbers")
    if not value:
        raise FeatureInputError(f"{name} is empty: expected {FEATURE_DIM} numbers")
    if len(value) != FEATURE_DIM:
        raise FeatureInputError(
            f"{name} has {len(value)} values, this device's model produces {FEATURE_DIM} "
            "(a feature from another model?)"
        )
    numbers = []
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise FeatureInputError(f"{name}[{i}] is not a number ({type(x).__name__})")
        try:
            number = float(x)
        except OverflowError:  # an integer beyond float range
            number = math.inf
        if not math.isfinite(number):
            raise FeatureInputError(f"{name}[{i}] is not a finite number")
        if abs(number) > FLOAT32_MAX:
            raise FeatureInputError(f"{name}[{i}] is beyond float32 range")
        numbers.append(number)
    return np.asarray(numbers, dtype=np.float32)


def compare(settings: FeatureSettings, a: np.ndarray, b: np.ndarray) -> Comparison:
    distance = float(np.linalg.norm(a.astype(np.float64) - b.astype(np.float64)))
    similarity = round(float(settings.scores.score(distance)) / 100.0, 4)
    return Comparison(
        similarity=similarity,
        distance=round(distance, 4),
        is_same_person=similarity >= settings.threshold,
        threshold=settings.threshold,
    )


def feature_list(vector: np.ndarray) -> list[float]:
    """JSON-friendly floats, each the shortest decimal that reads back as the same float32."""
    return [float(str(x)) for x in np.asarray(vector, dtype=np.float32)]


def analyze_image(
    engine: VisionEngine, data: bytes, settings: FeatureSettings
) -> tuple[FaceAnalysis, DecodedImage]:
    """Decode (with the limits), find the largest face, align and embed it; also the decoded image
    (its size after EXIF orientation, and the scale of a reduced decode). Worker thread."""
    image = decode_image(data, settings.limits)
    analysis = engine.analyze_largest(image.rgb)
    if analysis is None:
        raise NoQualifiedFace("no qualified face: no face was detected in the image")
    return analysis, image


def extract(engine: VisionEngine, data: bytes, settings: FeatureSettings) -> Extraction:
    """The descriptor of an image's largest face, with the enrollment gate's verdict. Worker thread."""
    analysis, image = analyze_image(engine, data, settings)
    return Extraction(
        feature=feature_list(analysis.embedding),
        model_id=engine.embedder.model_id,
        rect=image.to_source(analysis.face.clipped_box(image.width, image.height)),
        quality_failed=failed_checks(analysis.quality, settings.quality),
    )


def compare_with_image(
    engine: VisionEngine, data: bytes, feature: np.ndarray, model: object, settings: FeatureSettings
) -> tuple[Comparison, list[str]]:
    """Compare a stored descriptor (made by ``model``, if the client says) with an image's largest
    face; also the face's failed enrollment checks. Worker thread."""
    check_model(model, engine.embedder.model_id)
    analysis, _ = analyze_image(engine, data, settings)
    return (
        compare(settings, analysis.embedding, feature),
        failed_checks(analysis.quality, settings.quality),
    )
