"""The one interface every face-detector backend implements (daemon/vision/detectors/registry.py).

A backend takes an RGB image (and optionally a region of it), prepares its own model input, runs its
model and decodes the outputs itself; it returns faces (box, score, six keypoints in MediaPipe's order,
daemon/vision/types.py) in pixels of the image it was given, best first. A backend instance holds one
model runtime and, like it, is used by one thread at a time.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from daemon.vision.types import Face

Roi = tuple[int, int, int, int]


@runtime_checkable
class FaceDetector(Protocol):
    @property
    def name(self) -> str:
        """The model's name as /health and the CLI report it."""
        ...

    @property
    def default_min_score(self) -> float: ...

    @property
    def input_size(self) -> int:
        """Fixed-input models: their input side; free-size models: the smallest useful crop side."""
        ...

    def detect(
        self, image_rgb: np.ndarray, min_score: float | None = None, roi: Roi | None = None
    ) -> list[Face]: ...
