"""High-recall face detection for blurring: whole frame plus overlapping tiles, merged.

Why tiles (BlazeFace): the full-range model sees a 192-px input and finds a face reliably from ~14–16 px
there (test faces: 16 px 100 %, 12 px ~65 %), so a 32-px face in a 1920-px frame (~3 px in a whole-frame
pass) is lost; tiles of ``tile_size`` px keep faces from ~tile_size / 12 px detectable (its input cannot
be resized under XNNPACK).

Passes (plan_passes): the whole frame (faces large enough to be cut by tile edges), then a grid of
tiles; "pyramid" adds the levels in between (tiles of 2×, 4× … the finest size) for mid-size faces that
straddle fine tile edges (on the generated benchmark scenes it found nothing the grid missed: the
overlap already keeps such faces whole in one tile). Large images are first shrunk to at most
``max_side`` pixels on their longest side, bounding the work per image; the results are mapped back to
full-resolution pixels. Small images are tiled finer (down to the model's own input size, never
upscaled) while the grid stays within ``max_fine_tiles`` tiles: cheap, and it finds much smaller faces.

Merging (merge_faces): detections of all passes overlap heavily (every face is seen by the whole frame
and by one to four tiles). They are grouped by IoU or by containment (a partial box inside a whole
one), and each group becomes one face: the score-weighted mean of the members that agree with the best
one (IoU > 0.5), with the best score. A detection cut by a tile's inner edge, small enough that a
neighbouring tile sees it whole, only counts when nothing else found that face: no face twice.

Checking (verify_passes / confirm): zoomed into, textures (galaxies, engine parts, foliage) make the
model fire up to ~0.6–0.77 (on the no-face test images the whole frame stays ≤ 0.26, their tiles do
not: 15 false faces at 0.35 without checks). So a face found only by tiles and
scoring below ``sure_score`` is checked: the full-range model runs once more on a crop of 4× the face's
size (the face ~48 px in the model input), and the face stays if that run finds it at
``verify_score`` or more. On the generated test scenes every true face checked scored ≥ 0.72, while
95 % of the textures scored ≤ 0.53. BlazeFace's whole-frame faces are not checked: recall first.

Small-face pass (zoom_side, the blur API's accurate=true): a free-size backend runs once more on the
detection image enlarged to zoom_side (at most MAX_ZOOM×), keeping faces under zoom_max_face; such a
face needs the check at zoom_check_score unless a pass at the image's own scale was sure of it
(enlarged, textures score up to ~0.7). On ~1024-px WIDER photos it finds faces of 10–30 px the image
at its own size misses (docs/BENCHMARKS.md).

``detector`` names a backend (detectors/registry.py): tiles are for a fixed-input model (BlazeFace); a
free-size one (YuNet) runs once on the whole detection image, its faces below sure_score checked. The
plan is data (DetectPass, with a cost): callers spread passes over engines or frames, then merge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np

from daemon.vision.boxes import containment_matrix, iou_matrix
from daemon.vision.detect import DETECTOR_KINDS, resize_to_fit
from daemon.vision.detectors.registry import backend
from daemon.vision.types import Face, as_box

ModelKind = str  # a backend name of daemon/vision/detectors/registry.py (or "short" / "full")
Roi = tuple[int, int, int, int]

# IoU above which two detections are the same face (MediaPipe's own NMS uses 0.3 for faces).
MERGE_IOU = 0.3
# Share of the smaller box inside the larger one above which both are the same face (a partial box
# from a tile edge, or a face box inside a looser one from a coarser pass).
MERGE_CONTAINMENT = 0.6
# Only detections agreeing this well with the best one are averaged into the merged box.
AVERAGE_IOU = 0.5
# An edge-cut detection is dropped when it overlaps a kept face by this much (IoU or containment).
EDGE_OVERLAP = 0.1
# The check of a tile-only face runs the model on a square this many times the face's side.
VERIFY_ZOOM = 4.0
# The small-face pass (zoom_side) enlarges the detection image at most this much, and is skipped when it
# would enlarge it less than MIN_ZOOM (measured on WIDER photos: 2× finds faces of 10–30 px the image at
# its own size misses; docs/BENCHMARKS.md).
MAX_ZOOM = 2.0
MIN_ZOOM = 1.25


class Detects(Protocol):
    """What the detector needs of an engine (daemon.vision.engine.VisionEngine)."""

    def detect(
        self, image: np.ndarray, model: ModelKind = ..., min_score: float | None = ..., roi: Roi | None = ...
    ) -> list[Face]: ...


@dataclass(frozen=True)
class PrivacyDetectSettings:
    """How hard to look for faces to blur: config section ``privacy`` (daemon/config.py holds the
    defaults and their meaning; services/privacy.detect_settings builds this from it)."""

    detector: str  # the backend's name
    min_score: float
    models: Literal["full", "both"]  # "both": the short-range model on the whole frame too
    tiling: Literal["none", "grid", "pyramid"]
    tile_size: int  # finest tile side (detection-image px): faces ≥ ~tile_size/12 px found reliably
    overlap: float  # share of a tile shared with its neighbour (faces up to this size never cut)
    max_side: int  # images are shrunk to this longest side for detection
    max_fine_tiles: int  # small images: tile finer than tile_size while the grid has ≤ this many
    short_min_score: float  # threshold of the short-range model when models == "both"
    tile_min_score: float | None  # threshold on tiles (None: min_score); tile faces are checked
    verify: bool  # check faces found only by tiles (see the module docstring)
    sure_score: float  # a tile face scoring this much needs no check
    verify_score: float  # score the check must reach
    zoom_side: int = 0  # free-size backend: a small-face pass on the image enlarged to this side (0: off)
    zoom_max_face: int = 64  # faces that pass keeps: smaller than this (detection-image px)
    zoom_check_score: float = 0.6  # what the check of a face that pass saw (nothing sure of it) must reach

    @property
    def tile_score(self) -> float:
        return self.min_score if self.tile_min_score is None else self.tile_min_score

    def __post_init__(self) -> None:
        backend(self.detector)  # ConfigError for an unknown name
        full_input = DETECTOR_KINDS["full"].input_size
        scores = (
            self.min_score, self.short_min_score, self.sure_score, self.verify_score, self.tile_score,
            self.zoom_check_score,
        )
        if not all(0.0 <= v <= 1.0 for v in scores):
            raise ValueError("scores must be within [0, 1]")
        if self.tile_size < full_input:
            raise ValueError(f"tile_size must be at least the model input ({full_input} px)")
        if not 0.0 <= self.overlap <= 0.75:
            raise ValueError("overlap must be within [0, 0.75]")
        if self.max_side < full_input:
            raise ValueError(f"max_side must be at least {full_input} px")
        if self.max_fine_tiles < 0:
            raise ValueError("max_fine_tiles must not be negative")
        if self.zoom_side < 0 or self.zoom_max_face < 0:
            raise ValueError("zoom_side and zoom_max_face must not be negative")


@dataclass(frozen=True)
class DetectPass:
    """One model run: which model, on which region of the detection image.

    inner_edges says which sides (left, top, right, bottom) of a tile lie inside the image, where a
    neighbouring tile overlaps it by ``overlap_px``: a face cut there and no larger than that is seen
    whole by the neighbour.
    """

    model: ModelKind
    roi: Roi | None  # None: the whole image
    inner_edges: tuple[bool, bool, bool, bool] = (False, False, False, False)
    overlap_px: int = 0
    target: tuple[float, float, float, float] | None = None  # a check: the box of the face checked
    zoom: float = 1.0  # the region is enlarged this much before the run (the small-face pass)
    max_face: float = math.inf  # faces this tall or taller (detection-image px) are dropped

    @property
    def cost(self) -> int:
        return max(1, round(backend(self.model).cost * self.zoom * self.zoom))


@dataclass(frozen=True)
class PassResult:
    """The faces one pass found, in detection-image pixels."""

    passed: DetectPass
    faces: tuple[Face, ...]


def detection_scale(width: int, height: int, max_side: int) -> float:
    """Factor from full-resolution pixels to detection-image pixels (≤ 1)."""
    return min(1.0, max_side / max(width, height))


def detection_image(image_rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image to detect on (shrunk to max_side if larger) and its scale from the original."""
    height, width = image_rgb.shape[:2]
    scale = detection_scale(width, height, max_side)
    if scale >= 1.0:
        return image_rgb, 1.0
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    return resize_to_fit(image_rgb, small_w, small_h), scale


def tile_starts(length: int, tile: int, overlap_px: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering [0, length) with at least overlap_px shared.

    The tiles are spread evenly (the first at 0, the last ending at length), so the real overlap is at
    least the one asked for.
    """
    if tile >= length:
        return [0]
    count = max(2, math.ceil((length - overlap_px) / (tile - overlap_px)))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, tile: int, overlap: float, model: str = "full") -> list[DetectPass]:
    """Overlapping square tiles of side ``tile`` covering a width×height image (clipped at its edges)."""
    overlap_px = round(tile * overlap)
    xs = tile_starts(width, tile, overlap_px)
    ys = tile_starts(height, tile, overlap_px)
    passes = []
    for y in ys:
        for x in xs:
            x2, y2 = min(width, x + tile), min(height, y + tile)
            inner = (x > 0, y > 0, x2 < width, y2 < height)
            passes.append(DetectPass(model, (x, y, x2, y2), inner, overlap_px))
    return passes


def finest_tile(width: int, height: int, settings: PrivacyDetectSettings) -> int:
    """The finest tile side: tile_size, or smaller (down to the model input) while the grid stays
    within max_fine_tiles tiles — small images get a finer look at little cost."""
    tile = settings.tile_size
    floor = DETECTOR_KINDS["full"].input_size
    while (
        tile // 2 >= floor
        and len(tile_grid(width, height, tile // 2, settings.overlap)) <= settings.max_fine_tiles
    ):
        tile //= 2
    return tile


def tile_levels(width: int, height: int, settings: PrivacyDetectSettings) -> list[int]:
    """Tile sides to run, finest first (empty when the whole frame is already fine enough)."""
    if settings.tiling == "none" or not backend(settings.detector).tiled:
        return []
    longest = max(width, height)
    finest = finest_tile(width, height, settings)
    if finest >= longest * 0.8:  # the whole-frame pass sees the image at nearly the same scale
        return []
    levels = [finest]
    if settings.tiling == "pyramid":
        size = finest * 2
        while size <= longest / 2:
            levels.append(size)
            size *= 2
    return levels


def zoom_factor(width: int, height: int, settings: PrivacyDetectSettings) -> float:
    """How much the small-face pass enlarges a width×height detection image (1.0: no such pass).

    Only a free-size backend has one; the image is enlarged to zoom_side (at most MAX_ZOOM×), and not
    at all when that would be less than MIN_ZOOM× (the main pass already sees such faces nearly as big).
    """
    if settings.zoom_side <= 0 or backend(settings.detector).tiled:
        return 1.0
    zoom = min(MAX_ZOOM, settings.zoom_side / max(width, height))
    return zoom if zoom >= MIN_ZOOM else 1.0


def plan_passes(width: int, height: int, settings: PrivacyDetectSettings) -> list[DetectPass]:
    """Every model run for a width×height detection image: whole frame first, then the small-face
    pass or the tiles."""
    passes = [DetectPass(settings.detector, None)]
    zoom = zoom_factor(width, height, settings)
    if zoom > 1.0:
        passes.append(DetectPass(settings.detector, None, zoom=zoom, max_face=settings.zoom_max_face))
    if settings.models == "both":
        passes.append(DetectPass("short", None))
    for tile in reversed(tile_levels(width, height, settings)):  # coarse to fine
        passes.extend(tile_grid(width, height, tile, settings.overlap, settings.detector))
    return passes


def pass_threshold(p: DetectPass, settings: PrivacyDetectSettings) -> float:
    if p.target is not None:
        return settings.verify_score
    if p.model == "short":
        return settings.short_min_score
    return settings.min_score if p.roi is None else settings.tile_score


def run_passes(
    engine: Detects, image_rgb: np.ndarray, passes: Iterable[DetectPass], settings: PrivacyDetectSettings
) -> list[PassResult]:
    """Run each pass with engine.detect (one thread: the engine is not thread-safe)."""
    results = []
    for p in passes:
        threshold = pass_threshold(p, settings)
        if p.zoom == 1.0:
            faces = engine.detect(image_rgb, p.model, min_score=threshold, roi=p.roi)
        else:
            faces = zoomed_detect(engine, image_rgb, p, threshold)
        results.append(PassResult(p, tuple(f for f in faces if f.height < p.max_face)))
    return results


def zoomed_detect(engine: Detects, image_rgb: np.ndarray, p: DetectPass, threshold: float) -> list[Face]:
    """The faces of pass p run on its region enlarged p.zoom times, in image_rgb's pixels."""
    height, width = image_rgb.shape[:2]
    x1, y1, x2, y2 = (0, 0, width, height) if p.roi is None else p.roi
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    size = (max(1, round((x2 - x1) * p.zoom)), max(1, round((y2 - y1) * p.zoom)))
    big = cv2.resize(image_rgb[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)
    inv = 1.0 / p.zoom
    return [
        Face(
            box=(b[0] * inv + x1, b[1] * inv + y1, b[2] * inv + x1, b[3] * inv + y1),
            score=f.score,
            keypoints=f.keypoints * np.float32(inv) + np.asarray([x1, y1], dtype=np.float32),
        )
        for f in engine.detect(big, p.model, min_score=threshold)
        for b in (f.box,)
    ]


@dataclass(frozen=True)
class Candidate:
    """A merged face and whether it still needs a check (found only by tiles, below sure_score)."""

    face: Face
    confirmed: bool
    min_check: float = 0.0  # the score its check must reach (beyond the check pass's own threshold)


def is_edge_cut(face: Face, passed: DetectPass) -> bool:
    """Whether a tile's face crosses one of its inner edges and a neighbouring tile sees it whole."""
    if passed.roi is None or max(face.width, face.height) > passed.overlap_px:
        return False
    x1, y1, x2, y2 = face.box
    rx1, ry1, rx2, ry2 = passed.roi
    left, top, right, bottom = passed.inner_edges
    return (left and x1 < rx1) or (top and y1 < ry1) or (right and x2 > rx2) or (bottom and y2 > ry2)


def _merge(faces: Sequence[Face], flags: Sequence[Sequence[bool]]) -> list[tuple[Face, tuple[bool, ...]]]:
    """Faces grouped by IoU or containment, each group merged into one face; its flags say, one by one,
    whether any member's flag was set."""
    if not faces:
        return []
    order = sorted(range(len(faces)), key=lambda i: -faces[i].score)
    faces = [faces[i] for i in order]
    flagged = np.asarray([flags[i] for i in order], dtype=bool).reshape(len(order), -1)
    boxes = np.asarray([f.box for f in faces], dtype=np.float64)
    scores = np.asarray([f.score for f in faces], dtype=np.float64)
    points = np.stack([f.keypoints for f in faces]).astype(np.float64)
    iou, contained = iou_matrix(boxes, boxes), containment_matrix(boxes, boxes)
    free = np.ones(len(faces), dtype=bool)
    merged = []
    for top in range(len(faces)):
        if not free[top]:
            continue
        same = free & ((iou[top] > MERGE_IOU) | (contained[top] > MERGE_CONTAINMENT))
        same[top] = True
        free &= ~same
        # The box is averaged over the detections that agree well with the best one; boxes merely
        # overlapping or contained (a partial face from a tile edge) are absorbed without pulling it off.
        agree = same & (iou[top] > AVERAGE_IOU)
        agree[top] = True
        weights = scores[agree] / scores[agree].sum()
        box = weights @ boxes[agree]
        kps = np.tensordot(weights, points[agree], axes=1).astype(np.float32)
        face = Face(box=as_box(box), score=float(scores[top]), keypoints=kps)
        merged.append((face, tuple(bool(v) for v in flagged[same].any(axis=0))))
    return merged


def _overlaps_any(face: Face, others: Sequence[Face], threshold: float) -> bool:
    boxes = [f.box for f in others]
    iou, contained = iou_matrix(face.box, boxes), containment_matrix(face.box, boxes)
    return bool(np.any(iou > threshold) or np.any(contained > threshold))


def merge_faces(results: Iterable[PassResult], settings: PrivacyDetectSettings) -> list[Candidate]:
    """One candidate per face found by any pass, best first (see the module docstring).

    A face is confirmed without a check when a member of its group is sure: found by the whole frame of
    a tiled backend, or scoring sure_score on a pass at the image's own scale. Faces the small-face pass
    saw (an enlarged image, where textures score up to ~0.7) are checked unless such a member vouches
    for them, and their check must reach zoom_check_score.
    """
    # A free-size detector's whole-frame pass sees small faces as they are, like a tile does.
    trusted_whole = backend(settings.detector).tiled

    def sure(face: Face, passed: DetectPass) -> bool:
        if not settings.verify or (passed.roi is None and passed.zoom == 1.0 and trusted_whole):
            return True
        return passed.zoom == 1.0 and face.score >= settings.sure_score

    primary: list[Face] = []
    primary_flags: list[tuple[bool, bool]] = []  # (sure, seen by the small-face pass)
    edge: list[Face] = []
    edge_flags: list[tuple[bool, bool]] = []
    for result in results:
        for face in result.faces:
            flags = (sure(face, result.passed), result.passed.zoom != 1.0)
            if is_edge_cut(face, result.passed):
                edge.append(face)
                edge_flags.append(flags)
            else:
                primary.append(face)
                primary_flags.append(flags)
    kept = _merge(primary, primary_flags)
    faces = [f for f, _ in kept]
    for face, edge_group in _merge(edge, edge_flags):
        if not faces or not _overlaps_any(face, faces, EDGE_OVERLAP):
            kept.append((face, edge_group))
            faces.append(face)
    # The small-face pass saw it and nothing was sure of it: its check must reach zoom_check_score.
    candidates = [
        Candidate(face, is_sure, settings.zoom_check_score if zoomed else 0.0)
        for face, (is_sure, zoomed) in kept
    ]
    return sorted(candidates, key=lambda c: -c.face.score)


def verify_passes(
    candidates: Iterable[Candidate], width: int, height: int, model: str = "full"
) -> list[DetectPass]:
    """One zoomed run per candidate that needs a check (width×height: the image)."""
    passes = []
    for c in candidates:
        if c.confirmed:
            continue
        x1, y1, x2, y2 = c.face.box
        half = max(x2 - x1, y2 - y1) * VERIFY_ZOOM / 2
        cx = min(max((x1 + x2) / 2, 0.0), width - 1.0)  # a box may reach past the border
        cy = min(max((y1 + y2) / 2, 0.0), height - 1.0)
        roi = (math.floor(cx - half), math.floor(cy - half), math.ceil(cx + half), math.ceil(cy + half))
        passes.append(DetectPass(model, roi, target=c.face.box))
    return passes


def confirm(candidates: Iterable[Candidate], checks: Iterable[PassResult]) -> list[Face]:
    """The confirmed candidates plus the checked ones that the check found again (with the check's
    sharper box), best first. A check whose region lies outside the image counts as not found."""
    found: dict[tuple[float, float, float, float], Face] = {}
    for result in checks:
        target = result.passed.target
        if target is None or not result.faces:
            continue
        iou = iou_matrix(target, [f.box for f in result.faces])[0]
        best = int(np.argmax(iou))
        if iou[best] > MERGE_IOU:
            found[target] = result.faces[best]
    faces = []
    for c in candidates:
        if c.confirmed:
            faces.append(c.face)
        elif (check := found.get(c.face.box)) is not None and check.score >= c.min_check:
            faces.append(Face(box=check.box, score=max(check.score, c.face.score), keypoints=check.keypoints))
    return [f for f, _ in _merge(faces, [(False,)] * len(faces))]


def verifier(settings: PrivacyDetectSettings) -> str:
    """The backend that checks doubtful faces: the detector itself, zoomed in."""
    return settings.detector


def scale_faces(faces: Iterable[Face], scale: float) -> list[Face]:
    """Faces found on a detection image shrunk by ``scale``, in full-resolution pixels."""
    if scale == 1.0:
        return list(faces)
    inv = 1.0 / scale
    return [
        Face(box=as_box(v * inv for v in f.box), score=f.score, keypoints=(f.keypoints * np.float32(inv)))
        for f in faces
    ]


def detect_for_privacy(
    engine: Detects,
    image_rgb: np.ndarray,
    settings: PrivacyDetectSettings,
    select: Callable[[list[DetectPass]], list[DetectPass]] | None = None,
) -> list[Face]:
    """Every face to blur in image_rgb (uint8 HxWx3 RGB), in its full-resolution pixels, best first.

    engine is a VisionEngine (anything with detect(image, model, min_score=, roi=)); one thread at a
    time. ``select`` picks the passes to run from the whole plan (a stream runs a few tiles per frame);
    the checks of tile-only faces always run. The same steps, spread over several engines, are what the
    blur API runs (services/privacy).
    """
    small, scale = detection_image(image_rgb, settings.max_side)
    height, width = small.shape[:2]
    passes = plan_passes(width, height, settings)
    if select is not None:
        passes = select(passes)
    candidates = merge_faces(run_passes(engine, small, passes, settings), settings)
    checks = run_passes(engine, small, verify_passes(candidates, width, height, verifier(settings)), settings)
    return scale_faces(confirm(candidates, checks), scale)
