"""Face detection with MediaPipe's BlazeFace models, decoded here (no MediaPipe dependency).

Two models: "short" (128×128, faces within ~2 m filling a good part of the frame) and "full" (192×192,
small and distant faces). Both take a letterboxed RGB square scaled to [-1, 1] and return, per SSD
anchor, 16 regressor values (box centre/size and 6 keypoints as offsets in input pixels) and one score
logit. The decoder follows MediaPipe's TensorsToDetections + weighted NonMaxSuppression options for these
graphs (face_detection_short_range.pbtxt / face_detection_full_range.pbtxt), with the results mapped
back to pixels of the caller's image.

A Detector wraps one Interpreter and, like it, is not thread-safe: one per worker thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from daemon.errors import ModelError
from daemon.vision.anchors import AnchorConfig, ssd_anchor_centres
from daemon.vision.boxes import iou_matrix
from daemon.vision.runtime import Interpreter
from daemon.vision.types import Face, as_box

DetectorKindName = Literal["short", "full"]

# MediaPipe clips logits at ±100 before the sigmoid; float32 exp overflows near 89, so clip lower.
LOGIT_CLIP = 80.0
# MediaPipe's NonMaxSuppression options for face detection: IoU, WEIGHTED, 0.3.
NMS_IOU_THRESHOLD = 0.3
NUM_KEYPOINTS = 6
# Downscaling to the model input: INTER_AREA reads every source pixel and is slow on its generic path
# (~44 ms for 4000×3000, ~1.5 ms for 640×480 → 192×144), but fast for an exact 2× shrink. So a big
# shrink is done as a bilinear resize to twice the target (cheap: it samples only the pixels it needs)
# followed by an exact 2× area average, which anti-aliases well enough for the detector.
PRESCALE = 2


@dataclass(frozen=True)
class DetectorKind:
    """Everything that differs between the two BlazeFace models."""

    kind: str
    name: str
    model_key: str  # key in daemon.vision.models.MODEL_FILES
    anchors: AnchorConfig
    num_anchors: int
    default_min_score: float

    @property
    def input_size(self) -> int:
        return self.anchors.input_size


DETECTOR_KINDS: dict[str, DetectorKind] = {
    "short": DetectorKind(
        kind="short",
        name="blazeface_short_range",
        model_key="detector_short",
        anchors=AnchorConfig(input_size=128, strides=(8, 16, 16, 16), interpolated_scale_aspect_ratio=1.0),
        num_anchors=896,
        default_min_score=0.65,
    ),
    "full": DetectorKind(
        kind="full",
        name="blazeface_full_range",
        model_key="detector_full",
        anchors=AnchorConfig(input_size=192, strides=(4,), interpolated_scale_aspect_ratio=0.0),
        num_anchors=2304,
        default_min_score=0.5,
    ),
}


@dataclass(frozen=True)
class Letterbox:
    """How a crop was placed in the model input: input_xy = crop_xy * scale + pad, per axis."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    offset_x: int  # the crop's top-left corner in the full image
    offset_y: int

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2) points from model-input pixels to pixels of the full image."""
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] - self.pad_x) / self.scale_x + self.offset_x
        out[..., 1] = (xy[..., 1] - self.pad_y) / self.scale_y + self.offset_y
        return out


def resize_to_fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """image resized to width×height, anti-aliased when shrinking without paying INTER_AREA's slow path."""
    h, w = image.shape[:2]
    if (width, height) == (w, h):
        return image
    if width >= w or height >= h:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    mid_w, mid_h = width * PRESCALE, height * PRESCALE
    if w >= mid_w and h >= mid_h and (mid_w, mid_h) != (w, h):
        image = cv2.resize(image, (mid_w, mid_h), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def letterbox(crop: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """The (1, size, size, 3) float32 model input in [-1, 1] holding crop centred with its aspect kept.

    Padding is black (-1), as MediaPipe's ImageToTensor with BORDER_ZERO. Returns the input and
    (scale_x, scale_y, pad_x, pad_y); the scales are per axis because the resized size is rounded.
    """
    h, w = crop.shape[:2]
    fit = size / max(h, w)
    new_w = min(size, max(1, round(w * fit)))
    new_h = min(size, max(1, round(h * fit)))
    resized = resize_to_fit(crop, new_w, new_h)
    pad_x = (size - new_w) // 2
    pad_y = (size - new_h) // 2
    tensor = np.full((1, size, size, 3), -1.0, dtype=np.float32)
    region = tensor[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w]
    np.copyto(region, resized, casting="unsafe")
    region *= np.float32(1.0 / 127.5)
    region -= np.float32(1.0)
    return tensor, (new_w / w, new_h / h, pad_x, pad_y)


def decode(
    regressors: np.ndarray, logits: np.ndarray, anchors_px: np.ndarray, min_score: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (K, 4) x1y1x2y2, keypoints (K, 6, 2) and scores (K,) in model-input pixels, score ≥ min_score.

    regressors is (N, 16), logits (N,) or (N, 1), anchors_px (N, 2) anchor centres in input pixels. With
    fixed-size anchors and x/y/w/h scale equal to the input size, every value is a pixel offset. Only
    anchors whose logit can reach min_score are decoded (the sigmoid is monotonic).
    """
    logits = logits.reshape(-1)
    if min_score <= 0.0:
        candidates = np.arange(len(logits))
    elif min_score >= 1.0:
        candidates = np.flatnonzero(logits >= LOGIT_CLIP)
    else:
        # A little below the exact logit so that rounding never loses a candidate; filtered again below.
        candidates = np.flatnonzero(logits >= math.log(min_score / (1.0 - min_score)) - 1e-3)
    clipped = np.minimum(np.maximum(logits[candidates], -LOGIT_CLIP), LOGIT_CLIP).astype(np.float32)
    scores = 1.0 / (1.0 + np.exp(-clipped))
    passed = scores >= min_score
    keep = candidates[passed]
    raw = regressors[keep].astype(np.float32, copy=False)
    centres = anchors_px[keep]
    centre_xy = raw[:, 0:2] + centres
    half_wh = raw[:, 2:4] * np.float32(0.5)
    boxes = np.concatenate([centre_xy - half_wh, centre_xy + half_wh], axis=1)
    keypoints = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + centres[:, None, :]
    return boxes, keypoints, scores[passed]


def pairwise_iou(boxes: np.ndarray) -> np.ndarray:
    """(K, K) intersection over union of x1y1x2y2 boxes; degenerate boxes have IoU 0 with everything."""
    return iou_matrix(boxes, boxes)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression, sorted by score descending.

    Take the best remaining detection, gather every remaining detection overlapping it by more than
    iou_threshold (itself included), and replace the group by its score-weighted mean box and keypoints,
    keeping the best score. BlazeFace fires on several neighbouring anchors per face, so averaging them
    is steadier than keeping only the maximum.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    flat_kps = keypoints[order].reshape(len(order), -1)
    overlaps = pairwise_iou(boxes) > iou_threshold
    free = np.ones(len(scores), dtype=bool)
    out_boxes, out_kps, out_scores = [], [], []
    for top in range(len(scores)):
        if not free[top]:
            continue
        group = overlaps[top] & free
        group[top] = True
        free &= ~group
        weights = scores[group]
        weights = weights / weights.sum()
        out_boxes.append(weights @ boxes[group])
        out_kps.append(weights @ flat_kps[group])
        out_scores.append(scores[top])
    if not out_scores:
        return boxes[:0], keypoints[:0], scores[:0]
    out_keypoints = np.stack(out_kps).reshape(-1, *keypoints.shape[1:])
    return np.stack(out_boxes), out_keypoints, np.asarray(out_scores, dtype=np.float32)


def _output_indices(interpreter: Interpreter, num_anchors: int) -> tuple[int, int]:
    regressors = scores = None
    for detail in interpreter.get_output_details():
        shape = tuple(int(d) for d in detail["shape"])
        if shape == (1, num_anchors, 4 + 2 * NUM_KEYPOINTS):
            regressors = detail["index"]
        elif shape == (1, num_anchors, 1):
            scores = detail["index"]
    if regressors is None or scores is None:
        raise ModelError(f"model outputs do not look like BlazeFace with {num_anchors} anchors")
    return regressors, scores


class Detector:
    """BlazeFace on one Interpreter: detect(image) -> faces in pixels of that image."""

    def __init__(self, interpreter: Interpreter, kind: DetectorKindName) -> None:
        try:
            self.spec = DETECTOR_KINDS[kind]
        except KeyError:
            raise ValueError(f"unknown detector kind {kind!r}; known: {', '.join(DETECTOR_KINDS)}") from None
        size = self.spec.input_size
        (input_detail,) = interpreter.get_input_details()
        if tuple(int(d) for d in input_detail["shape"]) != (1, size, size, 3):
            raise ModelError(
                f"{self.spec.name}: expected input 1x{size}x{size}x3, got {input_detail['shape']}"
            )
        if input_detail["dtype"] is not np.float32:
            raise ModelError(f"{self.spec.name}: expected a float32 input, got {input_detail['dtype']}")
        self._interpreter = interpreter
        self._input_index = input_detail["index"]
        self._regressors_index, self._scores_index = _output_indices(interpreter, self.spec.num_anchors)
        anchors = ssd_anchor_centres(self.spec.anchors)
        if len(anchors) != self.spec.num_anchors:
            raise ModelError(f"{self.spec.name}: {len(anchors)} anchors, expected {self.spec.num_anchors}")
        self._anchors_px = anchors * np.float32(size)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def default_min_score(self) -> float:
        return self.spec.default_min_score

    def detect(
        self,
        image_rgb: np.ndarray,
        min_score: float | None = None,
        roi: tuple[int, int, int, int] | None = None,
    ) -> list[Face]:
        """Faces in image_rgb (uint8 HxWx3), best first, in pixels of image_rgb.

        min_score defaults to the kind's threshold. roi = (x1, y1, x2, y2) runs the model on that crop
        only (clipped to the image), e.g. to refine around a face or to tile a large image; the results
        are still in full-image pixels. Boxes may extend past the image border for cut faces.
        """
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected a uint8 HxWx3 RGB image, got {image_rgb.dtype} {image_rgb.shape}")
        threshold = self.spec.default_min_score if min_score is None else float(min_score)
        height, width = image_rgb.shape[:2]
        x1, y1, x2, y2 = (0, 0, width, height) if roi is None else roi
        x1, x2 = max(0, int(x1)), min(width, int(x2))
        y1, y2 = max(0, int(y1)), min(height, int(y2))
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"roi {roi} is empty inside a {width}x{height} image")
        tensor, (sx, sy, px, py) = letterbox(image_rgb[y1:y2, x1:x2], self.spec.input_size)
        placement = Letterbox(sx, sy, px, py, x1, y1)

        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        regressors = self._interpreter.get_tensor(self._regressors_index)[0]
        logits = self._interpreter.get_tensor(self._scores_index)[0]
        return self.faces_from_outputs(regressors, logits, threshold, placement)

    def faces_from_outputs(
        self, regressors: np.ndarray, logits: np.ndarray, min_score: float, placement: Letterbox
    ) -> list[Face]:
        """Decode raw model outputs (N, 16) and (N, 1) into faces in full-image pixels, best first."""
        boxes, keypoints, scores = decode(regressors, logits, self._anchors_px, min_score)
        if not len(scores):
            return []
        boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores)
        corners = placement.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        points = placement.to_image(keypoints).astype(np.float32)
        return [
            Face(box=as_box(corners[i]), score=float(scores[i]), keypoints=points[i])
            for i in range(len(scores))
        ]
