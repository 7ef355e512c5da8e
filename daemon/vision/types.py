"""Plain value types shared by the vision modules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Index of each BlazeFace keypoint in Face.keypoints (MediaPipe's order).
RIGHT_EYE = 0  # the subject's right eye: on the left side of a non-mirrored image
LEFT_EYE = 1
NOSE_TIP = 2
MOUTH = 3
RIGHT_EAR = 4
LEFT_EAR = 5

Box = tuple[float, float, float, float]  # (x1, y1, x2, y2)


def as_box(values: Iterable[float]) -> Box:
    """Four numbers (a row of a numpy array, say) as a Box of Python floats."""
    x1, y1, x2, y2 = (float(v) for v in values)
    return (x1, y1, x2, y2)


@dataclass(frozen=True)
class Face:
    """One detected face in pixel coordinates of the image given to the detector.

    box is (x1, y1, x2, y2) as floats (may extend past the image border for partial faces);
    keypoints is a (6, 2) float32 array of (x, y) in MediaPipe's order (see the constants above).
    """

    box: Box
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def clipped_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box rounded to ints and clipped to an image of the given size."""
        x1, y1, x2, y2 = self.box
        return (
            int(max(0, min(width, round(x1)))),
            int(max(0, min(height, round(y1)))),
            int(max(0, min(width, round(x2)))),
            int(max(0, min(height, round(y2)))),
        )
