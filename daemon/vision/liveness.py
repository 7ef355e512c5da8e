"""Passive liveness: MiniFASNet V2 (crop 2.7×) and V1SE (crop 4×) on one face of one image.

Both models (models/MODELS.md; converted by scripts/convert_liveness_model.py) see an 80×80 BGR crop
centred on the face and several times its size, so they judge the face *with its surroundings*:
paper edges, screen bezels, moiré, a hand holding a phone. The original pipeline used a detector whose
boxes are WIDER-FACE-style (hairline to chin, narrower and taller than BlazeFace's), so the BlazeFace
box is first mapped to such a box (``WIDER_BOXES``, fitted on WIDER FACE, docs/BENCHMARKS.md). The
two softmax outputs are averaged; the score is the live class's probability × 100 (0–100, higher =
more likely live), as in the original.

``context`` tells how much surroundings the image holds: how many face sizes it spans
(min(image width / box width, image height / box height) of the BlazeFace box). A terminal's 640×480
frame with a 200 px face spans 2.4; a tight face crop about 1.3, and the models mean much less there:
callers decide what to do with that (config ``liveness.min_context``; docs/API.md says what the API
reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from daemon.errors import ModelError
from daemon.vision.runtime import Interpreter
from daemon.vision.types import Face

INPUT_SIZE = 80
LIVE_CLASS = 1
# Crop scale of each model (the prefix of its original file name), in model order.
CROP_SCALES = (2.7, 4.0)


@dataclass(frozen=True)
class BoxCalibration:
    """BlazeFace box → the box of the detector the models were trained with: width and height scaled
    about the centre, the centre moved by ``shift`` × the box height (negative: up)."""

    width: float = 1.0
    height: float = 1.0
    shift: float = 0.0


# Fitted on WIDER FACE dev faces (scripts/bench_liveness.py --wider): the original's RetinaFace-style
# boxes are WIDER-style, narrower and taller than BlazeFace's and higher up (hairline to chin).
WIDER_BOXES = BoxCalibration(width=0.88, height=1.23, shift=-0.10)


@dataclass(frozen=True)
class LivenessResult:
    """score: 0–100, higher = more likely live; context: how many face sizes the image spans."""

    score: float
    context: float


def crop_box(
    width: int, height: int, box: tuple[float, float, float, float], scale: float
) -> tuple[tuple[int, int, int, int], float]:
    """Inclusive pixel bounds (x1, y1, x2, y2) of the model's crop of an (x, y, w, h) box, and the
    scale actually used.

    As the original: the scale is capped so the crop fits the image; the crop is centred on the box
    and shifted (not shrunk) to lie inside the image; the bounds are truncated to ints.
    """
    x, y, w, h = box
    if w <= 0 or h <= 0:
        raise ValueError("empty face box")
    scale = min((height - 1) / h, (width - 1) / w, scale)
    new_w, new_h = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    x1, y1, x2, y2 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > width - 1:
        x1 -= x2 - width + 1
        x2 = width - 1
    if y2 > height - 1:
        y1 -= y2 - height + 1
        y2 = height - 1
    return (int(x1), int(y1), int(x2), int(y2)), scale


def model_box(face: Face, calibration: BoxCalibration = WIDER_BOXES) -> tuple[float, float, float, float]:
    """The (x, y, w, h) box the models expect, from a BlazeFace face (see BoxCalibration)."""
    x1, y1, x2, y2 = face.box
    w, h = (x2 - x1) * calibration.width, (y2 - y1) * calibration.height
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + calibration.shift * (y2 - y1)
    return cx - w / 2, cy - h / 2, w, h


def context_of(image: np.ndarray, face: Face) -> float:
    """How many face sizes the image spans around the face (see the module docstring)."""
    height, width = image.shape[:2]
    return float(min(width / max(face.width, 1.0), height / max(face.height, 1.0)))


def crop_for_model(
    image_bgr: np.ndarray, box: tuple[float, float, float, float], scale: float
) -> tuple[np.ndarray, float]:
    """The 80×80 BGR uint8 crop of one model, and the scale used."""
    height, width = image_bgr.shape[:2]
    (x1, y1, x2, y2), used = crop_box(width, height, box, scale)
    patch = np.ascontiguousarray(image_bgr[y1 : y2 + 1, x1 : x2 + 1])
    return cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR), used


class LivenessModel:
    """The two MiniFASNet interpreters of one worker; implements vision.liveness_types.PassiveLiveness."""

    def __init__(self, interpreters: list[Interpreter], calibration: BoxCalibration = WIDER_BOXES) -> None:
        if len(interpreters) != len(CROP_SCALES):
            raise ModelError(f"passive liveness needs {len(CROP_SCALES)} models")
        self._io = []
        for interpreter in interpreters:
            inp, out = interpreter.get_input_details(), interpreter.get_output_details()
            if len(inp) != 1 or tuple(inp[0]["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
                raise ModelError("not a MiniFASNet liveness model: expected one 1×80×80×3 input")
            if len(out) != 1 or tuple(out[0]["shape"]) != (1, 3):
                raise ModelError("not a MiniFASNet liveness model: expected one 1×3 output")
            self._io.append((interpreter, inp[0]["index"], out[0]["index"]))
        self.calibration = calibration

    def probabilities(self, crop_bgr: np.ndarray, model: int) -> np.ndarray:
        """Softmax (3 classes; 1 = live) of one model for one 80×80 BGR crop."""
        if crop_bgr.shape != (INPUT_SIZE, INPUT_SIZE, 3) or crop_bgr.dtype != np.uint8:
            raise ValueError("expected an 80×80×3 uint8 BGR crop")
        interpreter, inp, out = self._io[model]
        interpreter.set_tensor(inp, crop_bgr[None].astype(np.float32))
        interpreter.invoke()
        softmax: np.ndarray = interpreter.get_tensor(out)[0]  # [0]: numpy types it Any
        return softmax.copy()

    def assess(self, image_bgr: np.ndarray, face: Face) -> LivenessResult:
        """Score and context of one face of a BGR image."""
        box = model_box(face, self.calibration)
        live = 0.0
        for model, scale in enumerate(CROP_SCALES):
            crop, _ = crop_for_model(image_bgr, box, scale)
            live += float(self.probabilities(crop, model)[LIVE_CLASS])
        return LivenessResult(score=100.0 * live / len(CROP_SCALES), context=context_of(image_bgr, face))

    def score(self, image_bgr: np.ndarray, face: Face) -> float:
        """0–100, higher = more likely live (PassiveLiveness)."""
        return self.assess(image_bgr, face).score


def load_liveness(
    paths: list[Path], num_threads: int = 1, calibration: BoxCalibration = WIDER_BOXES
) -> LivenessModel:
    from daemon.vision.runtime import load_interpreter

    return LivenessModel([load_interpreter(p, num_threads) for p in paths], calibration)
