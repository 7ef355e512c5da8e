"""YuNet (libfacedetection), an anchor-free face detector trained on WIDER FACE, run by OpenCV's DNN module.

Why OpenCV DNN and not TFLite: the model ships as ONNX (models/MODELS.md); converting it to TFLite needs
TensorFlow and onnx2tf, not feasible in the time given, so the ONNX file is run as it is (docs/BENCHMARKS.md
has its cost). Its input size is free (multiples of 32), so unlike BlazeFace it sees a whole photo at
its own resolution: no tiles for small faces.

Model facts (from the authors' export): input float32 NCHW **BGR**, 0–255, no normalisation; twelve
outputs, for strides 8, 16, 32: cls, obj (N×1), bbox (N×4), kps (N×10), one prior per cell, cells in
row-major order. Per cell (column c, row r, stride s): score = sqrt(cls·obj) (each clipped to [0, 1]),
centre = ((c + b0)·s, (r + b1)·s), size = (exp(b2)·s, exp(b3)·s), keypoint k = ((c + k2k)·s, (r + k2k+1)·s).
The five keypoints are right eye, left eye, nose tip, right and left mouth corner; they are mapped to
the project's six (MediaPipe order, daemon/vision/types.py): the mouth is the corners' mean and the ears,
which YuNet does not give, are placed at the box's sides at eye height.

Boxes: YuNet's boxes are WIDER's own style (hairline to chin), already what the blur needs.
A YuNetDetector is not thread-safe (one cv2.dnn.Net): one per worker thread, like a TFLite interpreter.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from daemon.errors import ModelError
from daemon.vision.boxes import iou_matrix
from daemon.vision.types import Face, as_box

STRIDES = (8, 16, 32)
ALIGN = 32  # input sides must be multiples of this
NMS_IOU = 0.3  # the authors use 0.3–0.45
DEFAULT_MIN_SCORE = 0.6
# A region smaller than this (the zoomed check of a doubtful face, 4× its side) is enlarged to it, so a
# small face is seen at ~48 px.
MIN_ROI_SIDE = 192
OUTPUT_NAMES = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES)


def padded_size(width: int, height: int) -> tuple[int, int]:
    """The model input size holding a width×height image (padded right and bottom)."""
    return -(-width // ALIGN) * ALIGN, -(-height // ALIGN) * ALIGN


def decode_level(
    cls: np.ndarray, obj: np.ndarray, bbox: np.ndarray, kps: np.ndarray, stride: int, cols: int,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (K, 4) x1y1x2y2, YuNet keypoints (K, 5, 2) and scores (K,) of one stride, score ≥ min_score."""
    scores = np.sqrt(np.clip(cls.reshape(-1), 0, 1) * np.clip(obj.reshape(-1), 0, 1))
    keep = np.flatnonzero(scores >= min_score)
    if not len(keep):
        return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, np.float32)
    cells = np.stack([keep % cols, keep // cols], axis=1).astype(np.float32)
    b = bbox.reshape(-1, 4)[keep].astype(np.float32)
    centre = (cells + b[:, 0:2]) * stride
    half = np.exp(np.minimum(b[:, 2:4], 20.0)) * (stride / 2)
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    points = (kps.reshape(-1, 5, 2)[keep].astype(np.float32) + cells[:, None, :]) * stride
    return boxes, points, scores[keep].astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy (hard) non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    overlaps = iou_matrix(boxes[order], boxes[order]) > iou_threshold
    free = np.ones(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if free[i]:
            kept.append(order[i])
            free &= ~overlaps[i]
    return np.asarray(kept, dtype=np.int64)


def six_keypoints(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(K, 6, 2) keypoints in MediaPipe's order from YuNet's (K, 5, 2) (see the module docstring)."""
    out = np.empty((len(points), 6, 2), dtype=np.float32)
    out[:, 0:3] = points[:, 0:3]
    out[:, 3] = points[:, 3:5].mean(axis=1)
    eye_y = points[:, 0:2, 1].mean(axis=1)
    out[:, 4, 0], out[:, 4, 1] = boxes[:, 0], eye_y
    out[:, 5, 0], out[:, 5, 1] = boxes[:, 2], eye_y
    return out


class YuNetDetector:
    """YuNet on one cv2.dnn.Net: detect(image) -> faces in pixels of that image."""

    name = "yunet"
    default_min_score = DEFAULT_MIN_SCORE
    input_size = 64  # smallest useful crop side (a roi is never upscaled to this)

    def __init__(self, model_path: Path, num_threads: int = 1) -> None:
        try:
            self._net = cv2.dnn.readNetFromONNX(str(model_path), cv2.dnn.ENGINE_CLASSIC)
        except cv2.error as exc:
            raise ModelError(f"cannot load model {model_path}: {exc}") from exc
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        # OpenCV's thread pool is process-wide (the daemon sets it once, daemon/serve.py); num_threads is
        # what each TFLite interpreter gets and is not applied here.
        del num_threads

    def detect(
        self,
        image_rgb: np.ndarray,
        min_score: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[Face]:
        """Faces in image_rgb (uint8 HxWx3 RGB), best first, in its pixels; roi as BlazeFace's detector."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image_rgb.dtype} {image_rgb.shape}")
        threshold = self.default_min_score if min_score is None else float(min_score)
        height, width = image_rgb.shape[:2]
        x1, y1, x2, y2 = (0, 0, width, height) if roi is None else roi
        x1, x2 = max(0, int(x1)), min(width, int(x2))
        y1, y2 = max(0, int(y1)), min(height, int(y2))
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"roi {roi} is empty inside a {width}x{height} image")
        crop = image_rgb[y1:y2, x1:x2]
        zoom = 1.0
        if roi is not None and max(x2 - x1, y2 - y1) < MIN_ROI_SIDE:
            zoom = MIN_ROI_SIDE / max(x2 - x1, y2 - y1)
            size = (max(1, round((x2 - x1) * zoom)), max(1, round((y2 - y1) * zoom)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)
        boxes, points, scores = self.run(crop, threshold)
        if not len(scores):
            return []
        if zoom != 1.0:
            boxes, points = boxes / np.float32(zoom), points / np.float32(zoom)
        offset = np.asarray([x1, y1], dtype=np.float32)
        boxes = boxes + np.tile(offset, 2)
        kps = six_keypoints(points + offset, boxes)
        return [
            Face(box=as_box(boxes[i]), score=float(scores[i]), keypoints=kps[i])
            for i in range(len(scores))
        ]

    def run(self, crop_rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, YuNet keypoints and scores in crop pixels after NMS, best first."""
        height, width = crop_rgb.shape[:2]
        in_w, in_h = padded_size(width, height)
        padded = cv2.copyMakeBorder(crop_rgb, 0, in_h - height, 0, in_w - width, cv2.BORDER_CONSTANT, value=0)
        blob = cv2.dnn.blobFromImage(padded, 1.0, swapRB=True)  # NCHW BGR float32, 0–255
        self._net.setInput(blob)
        outputs = dict(zip(OUTPUT_NAMES, self._net.forward(list(OUTPUT_NAMES)), strict=True))
        levels = [
            decode_level(
                outputs[f"cls_{s}"], outputs[f"obj_{s}"], outputs[f"bbox_{s}"], outputs[f"kps_{s}"],
                s, in_w // s, min_score,
            )
            for s in STRIDES
        ]
        boxes = np.concatenate([lv[0] for lv in levels])
        points = np.concatenate([lv[1] for lv in levels])
        scores = np.concatenate([lv[2] for lv in levels])
        if not len(scores):
            return boxes, points, scores
        keep = nms(boxes, scores)
        return boxes[keep], points[keep], scores[keep]
