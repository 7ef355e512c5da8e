"""Face-detector backends by name: the one table a new detector is registered in.

Config names a backend per use (``detection.detectors`` for enrolment and recognition,
``privacy.detector`` for the blur API, ``stream.detector`` and ``tasks.detector`` for video); the
engine (daemon/vision/engine.py) builds every registered backend once per worker.

``tiled`` says how the privacy detector reaches small faces with it: a fixed-input model (BlazeFace,
192 px) sees a 1080p frame shrunk tenfold, so it runs on tiles; a free-size model (YuNet) sees the
whole detection image at its own resolution and needs no tiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import ConfigError
from daemon.vision.detectors.base import FaceDetector
from daemon.vision.detectors.blazeface import blazeface_full, blazeface_short
from daemon.vision.detectors.yunet import YuNetDetector


@dataclass(frozen=True)
class DetectorBackend:
    name: str
    model_key: str  # key in daemon.vision.models.MODEL_FILES
    build: Callable[[Path, int], FaceDetector]  # (model path, threads) -> a detector
    tiled: bool  # fixed-input model: small faces need tiles (see the module docstring)
    cost: int  # relative cost of one whole-frame run (BlazeFace short = 1)
    description: str


#: Backend name → how to build it. The one place a new detector is registered.
DETECTOR_BACKENDS: dict[str, DetectorBackend] = {
    b.name: b
    for b in (
        DetectorBackend(
            "blazeface_short", "detector_short", blazeface_short, True, 1,
            "MediaPipe BlazeFace short range (128 px input, TFLite): near faces, fastest",
        ),
        DetectorBackend(
            "blazeface_full", "detector_full", blazeface_full, True, 3,
            "MediaPipe BlazeFace full range (192 px input, TFLite): faces up to ~5 m",
        ),
        DetectorBackend(
            "yunet", "detector_yunet", YuNetDetector, False, 12,
            "YuNet (libfacedetection, ONNX via OpenCV DNN), any input size: small faces in crowds",
        ),
    )
}

#: Short names the engine and its callers have always used.
ALIASES = {"short": "blazeface_short", "full": "blazeface_full"}


def backend(name: str) -> DetectorBackend:
    """The backend registered under name (or an alias); ConfigError names the known ones."""
    try:
        return DETECTOR_BACKENDS[ALIASES.get(name, name)]
    except KeyError:
        known = ", ".join(DETECTOR_BACKENDS)
        raise ConfigError(f"unknown face detector {name!r}; known: {known}") from None
