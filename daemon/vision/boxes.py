"""Overlap of x1y1x2y2 boxes, the one implementation every module uses (NMS, merging, tracking)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def intersections(
    boxes_a: npt.ArrayLike, boxes_b: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(intersection areas (A, B), areas of a (A,), areas of b (B,)); degenerate boxes have area 0."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0) * np.maximum(a[:, 3] - a[:, 1], 0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    return inter, area_a, area_b


def iou_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """(A, B) intersection over union; a degenerate box has IoU 0 with everything."""
    inter, area_a, area_b = intersections(a, b)
    iou: np.ndarray = inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)
    return iou


def containment_matrix(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """(A, B) intersection over the smaller box's area: 1 when one box lies inside the other."""
    inter, area_a, area_b = intersections(a, b)
    contained: np.ndarray = inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-6)
    return contained


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two single boxes."""
    return float(iou_matrix(np.asarray(a), np.asarray(b))[0, 0])
