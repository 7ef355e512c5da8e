"""The two BlazeFace backends (MediaPipe's short- and full-range models, TFLite); the decoding itself
lives in daemon/vision/detect.py."""

from __future__ import annotations

from pathlib import Path

from daemon.vision.detect import Detector
from daemon.vision.runtime import load_interpreter


def blazeface_short(model_path: Path, num_threads: int) -> Detector:
    return Detector(load_interpreter(model_path, num_threads), "short")


def blazeface_full(model_path: Path, num_threads: int) -> Detector:
    return Detector(load_interpreter(model_path, num_threads), "full")
