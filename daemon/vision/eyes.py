"""How open the eyes are: MediaPipe's iris model (iris_landmark.tflite) on eye crops placed by the face mesh.

For each eye a square crop centred between its two corners (face-mesh points), rotated so the corner
line is horizontal and 2.3 times the corner distance wide (MediaPipe's iris graphs), is warped to the
model's 64×64 RGB input scaled to [0, 1]. The model sees every eye the same way round: the subject's
left eye (on the right of a non-mirrored image) is mirrored horizontally first. It returns 71 eye
contour and brow points and 5 iris points; the first 16 contour points trace the eye: 0 and 8 are the
corners, 1–7 the lower lid, 9–15 the upper lid (the order of MediaPipe's face-mesh eye contour 33, 7,
163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173).

Openness is the eye aspect ratio (EAR) of Soukupová & Čech (2016), "Real-Time Eye Blink Detection using
Facial Landmarks": (|p2 − p6| + |p3 − p5|) / (2 |p1 − p4|), p1/p4 the corners, p2, p3 on the upper lid
and p6, p5 facing them on the lower lid. It is a ratio in the crop, so it does not depend on the face's
position, size or roll. Open eyes read ~0.2–0.4 depending on the person; closed ones about half that.

An EyeModel wraps one Interpreter and, like it, is not thread-safe: one per worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from daemon.errors import ModelError
from daemon.vision.align import warp_chip
from daemon.vision.runtime import Interpreter

EYE_INPUT = 64
EYE_ROI_SCALE = 2.3
CONTOUR_POINTS = 71
# Mesh indices of each eye's corners, left to right in a non-mirrored image.
RIGHT_EYE_CORNERS = (33, 133)  # the subject's right eye (left in the image)
LEFT_EYE_CORNERS = (362, 263)
# Contour indices of the EAR points p1..p6 (see the module docstring).
CONTOUR_EAR = (0, 11, 13, 8, 5, 3)
_MIRROR = np.array([[-1.0, 0.0, float(EYE_INPUT)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class EyeOpenness:
    """The eye aspect ratio of each eye, from the iris model's contours."""

    right: float
    left: float

    @property
    def mean(self) -> float:
        return (self.right + self.left) / 2.0


def eye_aspect_ratio(p: np.ndarray) -> float:
    """Soukupová & Čech's EAR from six (x, y) points in the order p1..p6."""
    p = np.asarray(p, dtype=np.float64)
    width = float(np.linalg.norm(p[0] - p[3]))
    if width <= 1e-6:
        return 0.0
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))


def eye_transform(corner_a: np.ndarray, corner_b: np.ndarray, mirror: bool) -> np.ndarray:
    """The 2×3 matrix mapping image pixels into the 64×64 eye input (corners a → b left to right)."""
    (ax, ay), (bx, by) = corner_a[:2], corner_b[:2]
    cx, cy = (ax + bx) / 2.0, (ay + by) / 2.0
    side = EYE_ROI_SCALE * math.hypot(bx - ax, by - ay)
    if not side > 0:
        raise ValueError("eye corners coincide")
    angle = math.atan2(by - ay, bx - ax)
    k = EYE_INPUT / side
    cos, sin = math.cos(angle) * k, math.sin(angle) * k
    half = EYE_INPUT / 2.0
    matrix = np.array(
        [[cos, sin, half - cos * cx - sin * cy], [-sin, cos, half + sin * cx - cos * cy], [0.0, 0.0, 1.0]]
    )
    return (_MIRROR @ matrix if mirror else matrix)[:2]


class EyeModel:
    """iris_landmark.tflite on one Interpreter: openness(image, mesh_points) -> EyeOpenness."""

    def __init__(self, interpreter: Interpreter) -> None:
        (input_detail,) = interpreter.get_input_details()
        if tuple(int(d) for d in input_detail["shape"]) != (1, EYE_INPUT, EYE_INPUT, 3):
            raise ModelError(f"iris model: expected input 1x64x64x3, got {input_detail['shape']}")
        contour = None
        for detail in interpreter.get_output_details():
            if int(np.prod(detail["shape"])) == CONTOUR_POINTS * 3:
                contour = detail["index"]
        if contour is None:
            raise ModelError("iris model: no output of 71 eye contour points")
        self._interpreter = interpreter
        self._input_index = input_detail["index"]
        self._contour_index = contour

    def contour(self, image: np.ndarray, corner_a: np.ndarray, corner_b: np.ndarray, mirror: bool,
                bgr: bool = True) -> np.ndarray:
        """The eye's 71 contour points (x, y, z) in the model's 64×64 input (mirrored if asked)."""
        chip = warp_chip(image, eye_transform(corner_a, corner_b, mirror), EYE_INPUT)
        if bgr:
            chip = cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)
        tensor = chip.astype(np.float32)[None] * np.float32(1.0 / 255.0)
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._contour_index).reshape(CONTOUR_POINTS, 3).copy()

    def openness(self, image: np.ndarray, mesh_points: np.ndarray, bgr: bool = True) -> EyeOpenness:
        """Both eyes' aspect ratios; mesh_points are the face mesh's 468 points in image pixels."""
        ratios = []
        for (a, b), mirror in ((RIGHT_EYE_CORNERS, False), (LEFT_EYE_CORNERS, True)):
            points = self.contour(image, mesh_points[a], mesh_points[b], mirror, bgr)
            ratios.append(eye_aspect_ratio(points[list(CONTOUR_EAR), :2]))
        return EyeOpenness(right=ratios[0], left=ratios[1])
