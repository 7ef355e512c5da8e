"""The one mapping from embedding distance to a 0–100 score.

compareScore, searchScore, group thresholds and the feature API's similarity (score / 100) all use it,
so the same number means the same thing everywhere. It is piecewise linear between anchor points
(distance → score), decreasing; the defaults and the data behind them are in docs/SCORES.md.
Distances are Euclidean between raw (not normalised) dlib descriptors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np

DEFAULT_ANCHORS: list[list[float]] = [[0.0, 100.0], [0.4, 90.0], [0.52, 80.0], [0.6, 70.0], [1.2, 0.0]]


class ScoreMapping:
    def __init__(self, anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS) -> None:
        points = np.asarray(anchors, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
            raise ValueError("score anchors must be at least two [distance, score] pairs")
        distances, scores = points[:, 0], points[:, 1]
        if distances[0] != 0.0 or np.any(np.diff(distances) <= 0):
            raise ValueError("anchor distances must start at 0 and increase")
        if np.any(np.diff(scores) >= 0) or scores[0] > 100 or scores[-1] < 0:
            raise ValueError("anchor scores must decrease, within 0..100")
        self._distances = distances
        self._scores = scores

    @overload
    def score(self, distance: float) -> float: ...
    @overload
    def score(self, distance: np.ndarray) -> float | np.ndarray: ...  # float for a 0-d array
    def score(self, distance: float | np.ndarray) -> float | np.ndarray:
        """Score 0–100 for a distance (beyond the last anchor: the last anchor's score)."""
        result = np.interp(distance, self._distances, self._scores)
        return float(result) if np.ndim(result) == 0 else result

    def max_distance(self, score: float) -> float:
        """The largest distance whose score is still ≥ score (the inverse, for thresholds)."""
        if score <= self._scores[-1]:
            return float("inf")
        if score >= self._scores[0]:
            return 0.0
        # np.interp needs increasing x: interpolate on the reversed arrays.
        return float(np.interp(score, self._scores[::-1], self._distances[::-1]))
