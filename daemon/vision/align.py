"""Cutting the 150×150 face chip the embedding model expects, from BlazeFace keypoints (no dlib).

dlib's network was trained on chips made from its own 5-point landmarks. We reproduce that geometry with a
least-squares similarity transform from three BlazeFace keypoints (both eyes and the mouth centre; the nose
tip is the noisiest keypoint) to where those points land in dlib's chip. CHIP_TEMPLATE was fitted on the
test faces against dlib's own chips (scripts/fit_alignment_template.py; docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from daemon.vision.types import LEFT_EYE, MOUTH, RIGHT_EYE, Face

CHIP_SIZE = 150
ALIGN_KEYPOINTS = (RIGHT_EYE, LEFT_EYE, MOUTH)
# Where BlazeFace's right eye, left eye and mouth centre land in dlib's 150×150 chip (padding 0.25).
CHIP_TEMPLATE = np.array([[45.3, 46.0], [102.0, 46.7], [73.1, 106.5]], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 rotation+uniform scale+translation that maps src points onto dst in least squares.

    Umeyama's closed form (1991), without reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    src_var = (src_c**2).sum() / len(src)
    scale = float((singular * d).sum() / src_var) if src_var > 0 else 1.0
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def chip_transform(face: Face, template: np.ndarray = CHIP_TEMPLATE) -> np.ndarray:
    """The 2×3 matrix mapping image pixels to chip pixels for this face."""
    return similarity_transform(face.keypoints[list(ALIGN_KEYPOINTS)], template)


def warp_chip(image: np.ndarray, matrix: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Apply an image→chip transform; large faces are shrunk with INTER_AREA first to avoid aliasing."""
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale >= 0.5:
        return cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
    # Only the part of the image that the chip covers is shrunk: map the chip's corners back.
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    back = corners @ inverse.T
    h, w = image.shape[:2]
    x1, y1 = np.floor(back.min(axis=0)).astype(int) - 2
    x2, y2 = np.ceil(back.max(axis=0)).astype(int) + 2
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((size, size, 3), dtype=np.uint8)
    factor = scale  # after shrinking by this factor the remaining warp has scale ~1
    crop = image[y1:y2, x1:x2]
    small = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    # small pixel p ↔ image pixel p / factor + (x1, y1), up to resize's rounding of the output size
    fx = small.shape[1] / crop.shape[1]
    fy = small.shape[0] / crop.shape[0]
    to_image = np.array([[1 / fx, 0, x1], [0, 1 / fy, y1], [0, 0, 1]], dtype=np.float64)
    adjusted = matrix @ to_image
    return cv2.warpAffine(
        small, adjusted, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def align_face(image: np.ndarray, face: Face, template: np.ndarray = CHIP_TEMPLATE) -> np.ndarray:
    """The 150×150 RGB chip of one face, in the geometry of dlib's get_face_chip (padding 0.25)."""
    return warp_chip(image, chip_transform(face, template))


def refine_roi(face: Face, width: int, height: int, factor: float = 2.0) -> tuple[int, int, int, int] | None:
    """A square region around a face for a second, closer detection pass (None if it is too small)."""
    cx = (face.box[0] + face.box[2]) / 2
    cy = (face.box[1] + face.box[3]) / 2
    half = max(face.width, face.height) * factor / 2
    x1, y1 = int(max(0, cx - half)), int(max(0, cy - half))
    x2, y2 = int(min(width, cx + half)), int(min(height, cy + half))
    if x2 - x1 < 16 or y2 - y1 < 16:
        return None
    return x1, y1, x2, y2
