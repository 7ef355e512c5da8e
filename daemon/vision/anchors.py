"""SSD anchor centres for MediaPipe's BlazeFace models.

The models predict every box and keypoint as an offset from a fixed grid of anchors, so the decoder must
rebuild exactly the grid the model was trained with. This follows the scheme of MediaPipe's
SsdAnchorsCalculator for the options the face detectors use (fixed_anchor_size: true, so every anchor is
1×1 in normalised units and only its centre matters):

- consecutive layers with the same stride share one feature map of ceil(input_size / stride) cells;
- each layer puts one anchor per aspect ratio in every cell, plus one interpolated-scale anchor when
  interpolated_scale_aspect_ratio > 0;
- anchors are emitted per feature map, cells in row-major order, a cell's anchors consecutively, with
  their centre at (cell + offset) / feature map size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AnchorConfig:
    """The SsdAnchorsCalculator options that matter with fixed_anchor_size (MediaPipe's names)."""

    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    num_aspect_ratios: int = 1
    anchor_offset: float = 0.5


def anchors_per_cell(config: AnchorConfig, num_layers_with_stride: int) -> int:
    per_layer = config.num_aspect_ratios + (1 if config.interpolated_scale_aspect_ratio > 0 else 0)
    return per_layer * num_layers_with_stride


def ssd_anchor_centres(config: AnchorConfig) -> np.ndarray:
    """(N, 2) float32 anchor centres (x, y) in [0, 1] of the model input, in the model's output order."""
    blocks: list[np.ndarray] = []
    layer = 0
    strides = config.strides
    while layer < len(strides):
        stride = strides[layer]
        same = 1
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = math.ceil(config.input_size / stride)
        per_cell = anchors_per_cell(config, same)
        centres = (np.arange(cells, dtype=np.float64) + config.anchor_offset) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")  # row-major: y outer, x inner
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        blocks.append(np.repeat(grid, per_cell, axis=0))
        layer += same
    return np.concatenate(blocks).astype(np.float32)
