"""One worker's set of models: every registered detector backend and the embedder, each with its own
runtime (daemon/vision/detectors/registry.py lists the detectors).

An engine is used by one thread at a time (the worker pool guarantees it). The model files are checked
once, by ModelPaths.resolve, before any engine is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from daemon.errors import ModelError
from daemon.vision.align import align_face, refine_roi
from daemon.vision.boxes import box_iou
from daemon.vision.detectors.base import FaceDetector
from daemon.vision.detectors.registry import ALIASES, DETECTOR_BACKENDS, backend
from daemon.vision.embed import Embedder
from daemon.vision.liveness import LivenessModel, load_liveness
from daemon.vision.models import resolve_model
from daemon.vision.quality import FaceQuality, assess
from daemon.vision.runtime import load_interpreter
from daemon.vision.timing import InferenceObserver, timed
from daemon.vision.types import Face

# The passive liveness models (MiniFASNet V2 and V1SE; daemon/vision/liveness.py), in load order.
LIVENESS_MODEL_KEYS = ("liveness_v2", "liveness_v1se")

# A backend name of daemon/vision/detectors/registry.py, or one of its aliases ("short", "full").
DetectorKind = str


@dataclass(frozen=True)
class ModelPaths:
    detector_short: Path
    detector_full: Path
    embedding: Path
    embedding_variant: str
    detectors: dict[str, Path] = field(default_factory=dict)  # backend name -> model file
    liveness: tuple[Path, ...] = ()  # the passive liveness models; () when liveness is disabled

    @staticmethod
    def required_keys(embedding_variant: str = "int8", liveness: bool = True) -> list[str]:
        """The MODEL_FILES keys resolve() checks: the daemon refuses to start without any of them
        (`facegate doctor` checks the same list)."""
        keys = ["detector_short", "detector_full", f"embedding_{embedding_variant}"]
        keys += [b.model_key for b in DETECTOR_BACKENDS.values() if b.model_key not in keys]
        return keys + (list(LIVENESS_MODEL_KEYS) if liveness else [])

    @classmethod
    def resolve(cls, models_dir: Path, embedding_variant: str = "int8", liveness: bool = True) -> ModelPaths:
        """Every model path after its sha256 check; ModelError names the first bad file."""
        paths = {k: resolve_model(models_dir, k) for k in cls.required_keys(embedding_variant, liveness)}
        return cls(
            detector_short=paths["detector_short"],
            detector_full=paths["detector_full"],
            embedding=paths[f"embedding_{embedding_variant}"],
            embedding_variant=embedding_variant,
            detectors={name: paths[b.model_key] for name, b in DETECTOR_BACKENDS.items()},
            liveness=tuple(paths[k] for k in LIVENESS_MODEL_KEYS) if liveness else (),
        )


class VisionEngine:
    """with_embedder=False: detection only (the stream and video blurring never embed; the embedding
    model is most of an engine's memory and load time)."""

    def __init__(
        self,
        paths: ModelPaths,
        num_threads: int = 1,
        min_scores: dict[str, float] | None = None,
        with_embedder: bool = True,
        flip_average: bool = False,
        recognition_detectors: Sequence[str] = ("short", "full"),
        observe: InferenceObserver | None = None,
    ) -> None:
        """observe: told (model, seconds) after every detector run and embedding (metrics)."""
        files = paths.detectors or {
            "blazeface_short": paths.detector_short,
            "blazeface_full": paths.detector_full,
        }
        self.detectors: dict[str, FaceDetector] = {
            name: timed(backend(name).build(path, num_threads), "detect", name, observe)
            for name, path in files.items()
        }
        for alias, name in ALIASES.items():
            self.detectors[alias] = self.detectors[name]
        # Per-backend default thresholds (config detection.*_min_score); the detector's own otherwise.
        self.min_scores = {name: d.default_min_score for name, d in self.detectors.items()}
        for name, score in (min_scores or {}).items():
            self.min_scores[name] = score
            self.min_scores[ALIASES.get(name, name)] = score
        self.recognition_detectors = tuple(recognition_detectors)
        for name in self.recognition_detectors:
            backend(name)
        self._embedder = (
            timed(
                Embedder(
                    load_interpreter(paths.embedding, num_threads), paths.embedding_variant, flip_average
                ),
                "embed",
                f"embedding_{paths.embedding_variant}",
                observe,
            )
            if with_embedder
            else None
        )
        # Passive liveness: a separate object, built only where faces are recognised.
        self.liveness: LivenessModel | None = None
        if with_embedder and paths.liveness:
            self.liveness = load_liveness(list(paths.liveness), num_threads)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise RuntimeError("this engine was built for detection only (with_embedder=False)")
        return self._embedder

    def liveness_score(self, image_bgr: np.ndarray, face: Face) -> float:
        """Passive liveness of one face, 0–100 (higher = more likely live); RuntimeError if liveness is
        off. How much context the image gave: daemon.vision.liveness.context_of."""
        if self.liveness is None:
            raise RuntimeError("this engine has no liveness model (liveness disabled or detection only)")
        return self.liveness.score(image_bgr, face)

    def detect(
        self,
        image: np.ndarray,
        model: DetectorKind = "short",
        min_score: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[Face]:
        if model not in self.detectors:
            backend(model)  # ConfigError naming the known backends
            raise ModelError(f"detector {model!r} is not loaded in this engine")
        threshold = self.min_scores[model] if min_score is None else min_score
        return self.detectors[model].detect(image, min_score=threshold, roi=roi)

    def refine(self, image: np.ndarray, face: Face) -> Face:
        """A second short-range pass on a crop around the face: the face fills more of the model's
        input, so the keypoints (and the alignment made from them) are more precise."""
        height, width = image.shape[:2]
        roi = refine_roi(face, width, height)
        if roi is None:
            return face
        candidates = self.detectors["short"].detect(image, min_score=0.3, roi=roi)
        scored = ((box_iou(c.box, face.box), c) for c in candidates)
        overlap, best = max(scored, key=lambda pair: pair[0], default=(0.0, face))
        return best if overlap >= 0.4 else face

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Faces for recognition: each of recognition_detectors in turn (config detection.detectors;
        by default BlazeFace short range, then full range) until one finds a face."""
        faces: list[Face] = []
        for name in self.recognition_detectors:
            faces = self.detect(image, name)
            if faces:
                break
        return faces

    def analyze(self, image: np.ndarray, face: Face, refine: bool = True) -> FaceAnalysis:
        """Refine, align, embed and assess one detected face."""
        if refine:
            face = self.refine(image, face)
        chip = align_face(image, face)
        return FaceAnalysis(
            face=face, chip=chip, embedding=self.embedder.embed(chip), quality=assess(face, chip)
        )

    def analyze_largest(self, image: np.ndarray) -> FaceAnalysis | None:
        """The largest face of an image, analysed; None when there is no face."""
        faces = self.find_faces(image)
        if not faces:
            return None
        return self.analyze(image, max(faces, key=lambda f: f.area))


@dataclass(frozen=True)
class FaceAnalysis:
    face: Face
    chip: np.ndarray  # 150×150 RGB, aligned like dlib's chips
    embedding: np.ndarray  # float32 (128,), raw dlib descriptor
    quality: FaceQuality
