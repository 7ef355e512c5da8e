"""One worker's set of models: both detectors and the embedder, each with its own interpreter.

An engine is used by one thread at a time (the worker pool guarantees it). The model files are checked
once, by ModelPaths.resolve, before any engine is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from daemon.vision.detect import Detector
from daemon.vision.embed import Embedder
from daemon.vision.models import resolve_model
from daemon.vision.runtime import load_interpreter
from daemon.vision.types import Face

DetectorKind = Literal["short", "full"]


@dataclass(frozen=True)
class ModelPaths:
    detector_short: Path
    detector_full: Path
    embedding: Path
    embedding_variant: str

    @classmethod
    def resolve(cls, models_dir: Path, embedding_variant: str = "int8") -> ModelPaths:
        """Every model path after its sha256 check; ModelError names the first bad file."""
        return cls(
            detector_short=resolve_model(models_dir, "detector_short"),
            detector_full=resolve_model(models_dir, "detector_full"),
            embedding=resolve_model(models_dir, f"embedding_{embedding_variant}"),
            embedding_variant=embedding_variant,
        )


class VisionEngine:
    def __init__(self, paths: ModelPaths, num_threads: int = 1) -> None:
        self.detectors: dict[str, Detector] = {
            "short": Detector(load_interpreter(paths.detector_short, num_threads), "short"),
            "full": Detector(load_interpreter(paths.detector_full, num_threads), "full"),
        }
        self.embedder = Embedder(load_interpreter(paths.embedding, num_threads), paths.embedding_variant)

    def detect(
        self,
        image: np.ndarray,
        model: DetectorKind = "short",
        min_score: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[Face]:
        detector = self.detectors[model]
        if min_score is None:
            return detector.detect(image, roi=roi)
        return detector.detect(image, min_score=min_score, roi=roi)
