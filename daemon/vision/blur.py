"""Making faces unrecognisable: the region to cover, and three ways to cover it.

The covered region is the face box padded to take in hair line, ears and chin (BlazeFace's box is tight
around eyes-to-mouth), clipped to the image. Blur strength grows with the face: a fixed kernel leaves
large faces recognisable and smears small ones into their surroundings. Methods are small functions in
an explicit table (BLUR_METHODS), chosen by name from config or per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import cv2
import numpy as np

BlurMethod = Literal["gaussian", "pixelate", "solid"]
Box = tuple[float, float, float, float]
Region = tuple[int, int, int, int]

# Padding as a share of the box size: more above (forehead, hair line) than below (chin).
PAD_SIDE = 0.25
PAD_TOP = 0.45
PAD_BOTTOM = 0.30


def cover_region(box: Box, width: int, height: int) -> Region | None:
    """The padded, clipped integer region (x1, y1, x2, y2) to cover for a face box; None if empty."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        return None
    px1 = int(np.floor(x1 - w * PAD_SIDE))
    px2 = int(np.ceil(x2 + w * PAD_SIDE))
    py1 = int(np.floor(y1 - h * PAD_TOP))
    py2 = int(np.ceil(y2 + h * PAD_BOTTOM))
    px1, py1 = max(0, px1), max(0, py1)
    px2, py2 = min(width, px2), min(height, py2)
    if px2 <= px1 or py2 <= py1:
        return None
    return px1, py1, px2, py2


def gaussian_kernel_size(region_width: int) -> int:
    """Odd kernel that grows with the face: at least 15 px, about half the region's width.

    (The seed service used max(15, min(51, w // 4 * 2 + 1)); its cap of 51 leaves a 400-px face
    recognisable, so there is no cap here.)
    """
    return max(15, (region_width // 4) * 2 + 1)


def _gaussian(patch: np.ndarray) -> np.ndarray:
    h, w = patch.shape[:2]
    k = gaussian_kernel_size(max(w, h))
    # Blur a shrunken copy and scale back: the same look as a huge kernel, at a fraction of the cost,
    # and no fine detail survives the round trip.
    small_side = 12
    factor = max(w, h) / small_side
    if factor > 2:
        small = cv2.resize(
            patch, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA
        )
        small = cv2.GaussianBlur(small, (3, 3), 0)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(patch, (k, k), 0)


def _pixelate(patch: np.ndarray) -> np.ndarray:
    h, w = patch.shape[:2]
    blocks = 6  # about 6 blocks across a face region: no feature survives (8 left a detectable face)
    small = cv2.resize(patch, (max(1, min(w, blocks)), max(1, min(h, blocks))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def _solid(patch: np.ndarray) -> np.ndarray:
    return np.zeros_like(patch)


BLUR_METHODS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gaussian": _gaussian,
    "pixelate": _pixelate,
    "solid": _solid,
}


def blur_regions(image: np.ndarray, regions: Iterable[Region], method: str = "gaussian") -> np.ndarray:
    """Cover each region of image in place (and return it). The caller owns the copy decision.

    Overlapping regions are covered as one: blurring them one after the other would paste one blurred
    patch over the other and leave a sharp seam across a face. A group of overlapping regions is
    blurred as its bounding rectangle and pasted back only inside the regions themselves.
    """
    try:
        cover = BLUR_METHODS[method]
    except KeyError:
        raise ValueError(f"unknown blur method {method!r}; known: {', '.join(BLUR_METHODS)}") from None
    for group in overlap_groups(list(regions)):
        x1, y1 = min(r[0] for r in group), min(r[1] for r in group)
        x2, y2 = max(r[2] for r in group), max(r[3] for r in group)
        patch = image[y1:y2, x1:x2]
        if not patch.size:
            continue
        covered = cover(patch)
        for rx1, ry1, rx2, ry2 in group:  # slices, not a boolean mask: a mask costs 10× more
            image[ry1:ry2, rx1:rx2] = covered[ry1 - y1 : ry2 - y1, rx1 - x1 : rx2 - x1]
    return image


def overlap_groups(regions: Sequence[Region]) -> list[list[Region]]:
    """Regions grouped by overlap (transitively): no region of one group touches another group."""
    groups: list[list[Region]] = []
    for region in regions:
        touching = [g for g in groups if any(_overlap(region, r) for r in g)]
        merged = [region]
        for group in touching:
            merged += group
            groups.remove(group)
        groups.append(merged)
    return groups


def _overlap(a: Region, b: Region) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def blur_faces(image: np.ndarray, boxes: Iterable[Box], method: str = "gaussian") -> list[Region]:
    """Blur every face box (padded) in place; returns the regions covered."""
    height, width = image.shape[:2]
    regions = [r for b in boxes if (r := cover_region(b, width, height)) is not None]
    blur_regions(image, regions, method)
    return regions


def draw_boxes(image: np.ndarray, regions: Iterable[Region]) -> None:
    """Green rectangles around covered regions (the blur API's show_box), in place."""
    thickness = max(2, round(max(image.shape[:2]) / 400))
    for x1, y1, x2, y2 in regions:
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), thickness)
