"""Recall on a folder of photos with face boxes (WIDER style) and false faces on no-face folders.

Used by ``scripts/bench_privacy.py wider``. The folder holds ``boxes.json`` ({"images/<file>": [[x1, y1,
x2, y2], …]}) and the images; nothing of it is ever copied into the repository. A ground-truth face of
height ≥ 16 / 32 / 64 px is found when an unused detection overlaps it with IoU ≥ 0.5 (greedy, best IoU
first); every detection on a no-face image is a false face.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from daemon.vision.boxes import iou_matrix

Box = tuple[float, float, float, float]
Detect = Callable[[np.ndarray], Sequence[Box]]
SIZES = (16, 32, 64)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_boxes(folder: Path) -> list[tuple[Path, list[Box]]]:
    data = json.loads((folder / "boxes.json").read_text())
    return [(folder / name, [tuple(map(float, b)) for b in boxes]) for name, boxes in sorted(data.items())]


def no_face_images(folders: Sequence[Path]) -> list[Path]:
    return sorted(p for f in folders for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def greedy_hits(truth: Sequence[Box], found: Sequence[Box], threshold: float = 0.5) -> list[bool]:
    """Whether each truth box is matched by an unused detection at IoU ≥ threshold, best IoU first."""
    hits = [False] * len(truth)
    if not truth or not found:
        return hits
    iou = iou_matrix(np.asarray(truth), np.asarray(found))
    used = [False] * len(found)
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < threshold:
            break
        if not hits[i] and not used[j]:
            hits[i] = used[j] = True
    return hits


@dataclass
class WiderScore:
    found: dict[int, list[int]] = field(default_factory=lambda: {s: [0, 0] for s in SIZES})
    false_faces: int = 0
    false_images: list[str] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    def add(self, truth: Sequence[Box], hits: Sequence[bool]) -> None:
        for box, hit in zip(truth, hits, strict=True):
            for size in SIZES:
                if box[3] - box[1] >= size:
                    self.found[size][0] += hit
                    self.found[size][1] += 1

    def recall(self, size: int) -> float:
        found, total = self.found[size]
        return found / max(1, total)

    def row(self, name: str) -> str:
        cells = " | ".join(f"{100 * self.recall(s):.1f}%" for s in SIZES)
        return f"| {name} | {cells} | {self.false_faces} | {np.median(self.ms):.0f} |"


def score(
    detect: Detect, folder: Path, no_face_folders: Sequence[Path], limit: int | None = None
) -> WiderScore:
    result = WiderScore()
    for path, truth in load_boxes(folder)[:limit]:
        image = read_rgb(path)
        start = time.perf_counter()
        found = detect(image)
        result.ms.append(1000 * (time.perf_counter() - start))
        result.add(truth, greedy_hits(truth, list(found)))
    for path in no_face_images(no_face_folders):
        n = len(detect(read_rgb(path)))
        if n:
            result.false_faces += n
            result.false_images.append(f"{path.name}:{n}")
    return result


TABLE_HEADER = (
    "| detector | ≥ 16 px | ≥ 32 px | ≥ 64 px | false faces | median ms / photo |\n"
    "|---|---:|---:|---:|---:|---:|"
)
