"""MediaPipe's 468-point face mesh (face_landmark.tflite) on a BlazeFace detection, and eye openness.

The crop follows MediaPipe's face-landmark graphs (face_detection_front_detection_to_roi): a square
around the detection box centre, 1.5 times its longer side, rotated so the line from the right eye to
the left eye keypoint is horizontal; it is warped to the model's 192×192 RGB input scaled to [0, 1].
The model returns 468 (x, y, z) points in input pixels and one face-presence logit.

The mesh locates the eyes (corners and lids) for daemon/vision/eyes.py, which measures how open they
are with the iris model: measured on our test photos, the mesh's own lid points barely move when the
eyes are closed (its eye aspect ratio drops by under 10 %), the iris model's eye contour closes.

A FaceMesh wraps one Interpreter and, like it, is not thread-safe: one per worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from daemon.errors import ModelError
from daemon.vision.align import warp_chip
from daemon.vision.runtime import Interpreter
from daemon.vision.types import LEFT_EYE, RIGHT_EYE, Face

MESH_INPUT = 192
MESH_POINTS = 468
ROI_SCALE = 1.5  # MediaPipe's RectTransformation scale for the face-landmark ROI



@dataclass(frozen=True)
class MeshResult:
    """The mesh of one face: points in image pixels and presence 0..1."""

    points: np.ndarray  # (468, 3) float32: x, y in image pixels, z in the same scale (relative depth)
    presence: float  # the model's face-presence probability for the crop


def roi_transform(face: Face, size: int = MESH_INPUT, scale: float = ROI_SCALE) -> np.ndarray:
    """The 2×3 matrix mapping image pixels into the mesh model's input for this face."""
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1) * scale
    if not side > 0:
        raise ValueError(f"empty face box {face.box}")
    dx, dy = face.keypoints[LEFT_EYE] - face.keypoints[RIGHT_EYE]
    angle = math.atan2(float(dy), float(dx))  # rotate the image by -angle to level the eyes
    k = size / side
    cos, sin = math.cos(angle) * k, math.sin(angle) * k
    # input = k · R(−angle) · (image − centre) + size/2
    return np.array(
        [[cos, sin, size / 2.0 - cos * cx - sin * cy], [-sin, cos, size / 2.0 + sin * cx - cos * cy]],
        dtype=np.float64,
    )


class FaceMesh:
    """face_landmark.tflite on one Interpreter: mesh(image, face) -> MeshResult."""

    def __init__(self, interpreter: Interpreter) -> None:
        (input_detail,) = interpreter.get_input_details()
        if tuple(int(d) for d in input_detail["shape"]) != (1, MESH_INPUT, MESH_INPUT, 3):
            raise ModelError(f"face mesh: expected input 1x192x192x3, got {input_detail['shape']}")
        if input_detail["dtype"] is not np.float32:
            raise ModelError(f"face mesh: expected a float32 input, got {input_detail['dtype']}")
        points = presence = None
        for detail in interpreter.get_output_details():
            count = int(np.prod(detail["shape"]))
            if count == MESH_POINTS * 3:
                points = detail["index"]
            elif count == 1:
                presence = detail["index"]
        if points is None or presence is None:
            raise ModelError("face mesh: outputs do not look like 468 landmarks and a presence score")
        self._interpreter = interpreter
        self._input_index = input_detail["index"]
        self._points_index = points
        self._presence_index = presence

    def crop(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """The model's 192×192 input (same channel order as image, uint8) and its image→input matrix.

        Only the covered part of the image is read; a large face is shrunk with area averaging first.
        """
        matrix = roi_transform(face)
        return warp_chip(image, matrix, MESH_INPUT), matrix

    def mesh(self, image: np.ndarray, face: Face, bgr: bool = True) -> MeshResult:
        """The mesh of one face of a uint8 HxWx3 image (BGR unless bgr=False)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 HxWx3 image, got {image.dtype} {image.shape}")
        chip, matrix = self.crop(image, face)
        if bgr:
            chip = cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)
        tensor = chip.astype(np.float32)[None] * np.float32(1.0 / 255.0)
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._points_index).reshape(MESH_POINTS, 3).astype(np.float64)
        logit = float(self._interpreter.get_tensor(self._presence_index).reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-max(-80.0, min(80.0, logit))))
        inverse = cv2.invertAffineTransform(matrix)
        points = np.empty((MESH_POINTS, 3), dtype=np.float32)
        points[:, :2] = raw[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        points[:, 2] = raw[:, 2] / math.hypot(matrix[0, 0], matrix[0, 1])
        return MeshResult(points=points, presence=presence)
