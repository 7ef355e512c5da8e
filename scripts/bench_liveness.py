#!/usr/bin/env python3
"""Passive liveness on every labelled image we have: APCER/BPCER, full frames vs tight crops, timing.

Sets (label: live = bona fide, attack = presentation attack):
- samples: the three MiniFASNet demo images (tests/data/minifasnet; F1, F2 attacks, T1 live);
- faces: the live photos of tests/data/faces (32bit.png is obama2.jpg again and is left out);
- recaptures: the live photos rendered as a phone screen (bezel, moiré, gamma) and as a print (white
  border, perspective, low contrast) on a background: a smoke test of our own making, not an evaluation;
- wider (with --wider DIR): every face ≥ --min-face px of a WIDER FACE dev folder that BlazeFace finds and
  that matches a ground-truth box: bona fide photos of many cameras. The same matches fit the box
  calibration (median WIDER box / BlazeFace box), which is what the original's detector was trained on.
Every image is also scored as a tight crop (the face box × 1.3, as a terminal might send it).

    .venv/bin/python scripts/bench_liveness.py [--wider WIDER_DEV_DIR] [--threshold T]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.config import Config  # noqa: E402
from daemon.vision.boxes import box_iou  # noqa: E402
from daemon.vision.engine import ModelPaths, VisionEngine  # noqa: E402
from daemon.vision.image import ImageLimits, decode_image  # noqa: E402
from daemon.vision.liveness import (  # noqa: E402
    CROP_SCALES,
    WIDER_BOXES,
    BoxCalibration,
    LivenessModel,
    crop_for_model,
    load_liveness,
    model_box,
)
from daemon.vision.types import Face  # noqa: E402

DATA = REPO / "tests" / "data"
TIGHT = 1.3


@dataclass
class Scored:
    set: str
    name: str
    live: bool
    score: float
    context: float


def load_rgb(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), ImageLimits(kinds=ImageLimits.device_api().kinds)).rgb


def largest(engine: VisionEngine, rgb: np.ndarray) -> Face | None:
    """The largest face, refined as the device API does before it scores liveness."""
    faces = engine.find_faces(rgb)
    return engine.refine(rgb, max(faces, key=lambda f: f.area)) if faces else None


def tight_crop(rgb: np.ndarray, face: Face, factor: float = TIGHT) -> np.ndarray:
    x1, y1, x2, y2 = face.box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * factor / 2
    h, w = rgb.shape[:2]
    a, b = int(max(0, cx - half)), int(max(0, cy - half))
    return np.ascontiguousarray(rgb[b : int(min(h, cy + half)), a : int(min(w, cx + half))])


def _background(size: tuple[int, int], seed: int) -> np.ndarray:
    backgrounds = sorted((DATA / "no_faces").iterdir())
    image = load_rgb(backgrounds[seed % len(backgrounds)])
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def render_screen(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The photo on a phone held in front of the camera: bezel, backlight gamma, moiré, on a background."""
    canvas = _background((480, 640), seed).astype(np.float32)
    h, w = rgb.shape[:2]
    scale = min(300 / w, 420 / h)
    shown = cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA).astype(np.float32)
    shown = 255 * (shown / 255) ** 0.8 * np.array([0.92, 0.97, 1.06]) + 12
    yy, xx = np.mgrid[: shown.shape[0], : shown.shape[1]]
    shown *= (1 + 0.06 * np.sin(xx * 1.9 + yy * 0.35))[..., None]
    sh, sw = shown.shape[:2]
    top, left = (640 - sh) // 2, (480 - sw) // 2
    cv2.rectangle(canvas, (left - 18, top - 40), (left + sw + 18, top + sh + 40), (15, 15, 18), -1)
    canvas[top : top + sh, left : left + sw] = shown
    return _camera(canvas, seed)


def render_print(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The photo printed with a white border, slightly tilted, on a background."""
    canvas = _background((480, 640), seed + 3)
    h, w = rgb.shape[:2]
    scale = min(320 / w, 430 / h)
    shown = cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA).astype(np.float32)
    shown = 40 + shown * 0.75 * np.array([1.04, 1.0, 0.9])  # paper: low contrast, warm ink
    paper = np.full((shown.shape[0] + 40, shown.shape[1] + 40, 3), 235, np.float32)
    paper[20:-20, 20:-20] = shown
    ph, pw = paper.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    left, top = (480 - pw) / 2, (640 - ph) / 2
    tilt = 12 + 6 * (seed % 3)
    dst = np.float32(
        [[left + tilt, top], [left + pw - tilt, top + tilt], [left + pw, top + ph], [left, top + ph - tilt]]
    )
    warp = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(paper, warp, (480, 640))
    mask = cv2.warpPerspective(np.ones((ph, pw), np.float32), warp, (480, 640))[..., None]
    return _camera(canvas * (1 - mask) + warped * mask, seed)


def _camera(image: np.ndarray, seed: int) -> np.ndarray:
    """Sensor noise, a little blur and JPEG, as a camera would add."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(image, (3, 3), 0.8) + rng.normal(0, 3, image.shape)
    _, jpeg = cv2.imencode(
        ".jpg", np.clip(image, 0, 255).astype(np.uint8)[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1].copy()


def score(model: LivenessModel, rgb: np.ndarray, face: Face) -> tuple[float, float]:
    result = model.assess(np.ascontiguousarray(rgb[..., ::-1]), face)
    return result.score, result.context


def labelled(engine: VisionEngine, model: LivenessModel) -> list[Scored]:
    images: list[tuple[str, str, bool, np.ndarray]] = []
    for path in sorted((DATA / "minifasnet").glob("*.jpg")):
        images.append(("samples", path.name, "_T" in path.name, load_rgb(path)))
    lives = [p for p in sorted((DATA / "faces").iterdir()) if p.name != "32bit.png"]
    for seed, path in enumerate(lives):
        rgb = load_rgb(path)
        images.append(("faces", path.name, True, rgb))
        images.append(("recaptures", f"screen:{path.name}", False, render_screen(rgb, seed)))
        images.append(("recaptures", f"print:{path.name}", False, render_print(rgb, seed)))
    result = []
    for set_name, name, live, rgb in images:
        face = largest(engine, rgb)
        if face is None:
            print(f"  no face in {set_name}/{name}: left out")
            continue
        result.append(Scored(set_name, name, live, *score(model, rgb, face)))
        crop = tight_crop(rgb, face)
        if (crop_face := largest(engine, crop)) is not None:
            result.append(Scored(f"{set_name}/tight", name, live, *score(model, crop, crop_face)))
    return result


def wider(
    engine: VisionEngine, model: LivenessModel, folder: Path, min_face: int
) -> tuple[list[Scored], list]:
    import json

    boxes = json.loads((folder / "boxes.json").read_text())
    scored, ratios = [], []
    for rel, truth in sorted(boxes.items()):
        truth = [b for b in truth if b[3] - b[1] >= min_face]
        if not truth:
            continue
        rgb = load_rgb(folder / rel)
        for found in engine.detect(rgb, "short") + engine.detect(rgb, "full"):
            face = engine.refine(rgb, found)
            if not truth:
                break
            best = max(truth, key=lambda b: box_iou(face.box, tuple(b)))
            if box_iou(face.box, tuple(best)) < 0.3 or face.height < min_face * 0.8:
                continue
            truth.remove(best)
            x1, y1, x2, y2 = face.box
            ratios.append(
                (
                    (best[2] - best[0]) / (x2 - x1),
                    (best[3] - best[1]) / (y2 - y1),
                    ((best[1] + best[3]) / 2 - (y1 + y2) / 2) / (y2 - y1),
                )
            )
            scored.append(Scored("wider", rel, True, *score(model, rgb, face)))
            framed = door_frame(rgb, face)
            if (framed_face := largest(engine, framed)) is not None:
                scored.append(Scored("wider/framed", rel, True, *score(model, framed, framed_face)))
    return scored, ratios


def door_frame(rgb: np.ndarray, face: Face, spans: float = 2.5) -> np.ndarray:
    """A 3:4 window around the face spanning ``spans`` face widths, as a door terminal frames a visitor
    (shifted to stay inside the image)."""
    x1, y1, x2, y2 = face.box
    w = (x2 - x1) * spans
    h = w * 4 / 3
    height, width = rgb.shape[:2]
    left = int(min(max(0, (x1 + x2) / 2 - w / 2), max(0, width - w)))
    top = int(min(max(0, (y1 + y2) / 2 - h * 0.45), max(0, height - h)))
    return np.ascontiguousarray(rgb[top : top + int(h), left : left + int(w)])


def rates(rows: list[Scored], threshold: float, min_context: float) -> str:
    lives = [r for r in rows if r.live]
    attacks = [r for r in rows if not r.live]

    def passes(r: Scored) -> bool:
        return r.score >= threshold and r.context >= min_context

    bpcer = sum(not passes(r) for r in lives)
    apcer = sum(passes(r) for r in attacks)
    parts = []
    if lives:
        parts.append(f"BPCER {bpcer}/{len(lives)} = {100 * bpcer / len(lives):.1f}%")
    if attacks:
        parts.append(f"APCER {apcer}/{len(attacks)} = {100 * apcer / len(attacks):.1f}%")
    return ", ".join(parts)


def timing(model: LivenessModel, engine: VisionEngine, runs: int) -> dict[str, float]:
    """Median ms of one face (crop + resize + both invokes) and of each model's invoke alone, over
    ``runs`` calls in 5 trials: the overall median and the best trial's (least disturbed by other load)."""
    rgb = load_rgb(DATA / "minifasnet" / "image_T1.jpg")
    bgr, face = np.ascontiguousarray(rgb[..., ::-1]), largest(engine, rgb)
    box_crops = [crop_for_model(bgr, model_box(face, model.calibration), s)[0] for s in CROP_SCALES]
    jobs = {
        "assess": lambda: model.assess(bgr, face),
        "invoke v2": lambda: model.probabilities(box_crops[0], 0),
        "invoke v1se": lambda: model.probabilities(box_crops[1], 1),
    }
    result: dict[str, float] = {}
    for name, job in jobs.items():
        trials = []
        for _ in range(5):
            times = []
            for _ in range(max(1, runs // 5)):
                start = time.perf_counter()
                job()
                times.append((time.perf_counter() - start) * 1000)
            trials.append(times)
        result[f"{name} p50"] = statistics.median([t for trial in trials for t in trial])
        result[f"{name} best-trial p50"] = min(statistics.median(trial) for trial in trials)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wider", type=Path, help="a WIDER FACE dev folder (images/, boxes.json)")
    parser.add_argument("--min-face", type=int, default=80, help="smallest WIDER face height used (px)")
    parser.add_argument("--threshold", type=float, help="liveness.min_score (default: the config's)")
    parser.add_argument(
        "--box",
        type=float,
        nargs=3,
        metavar=("W", "H", "SHIFT"),
        help="box calibration (default: WIDER_BOXES)",
    )
    parser.add_argument("--runs", type=int, default=200, help="timing runs")
    parser.add_argument("--verbose", action="store_true", help="print every score")
    args = parser.parse_args(argv)
    defaults = Config().liveness
    cv2.setNumThreads(1)  # as the daemon (daemon/serve.py): parallelism comes from the worker pool
    threshold = defaults.min_score if args.threshold is None else args.threshold
    calibration = WIDER_BOXES if args.box is None else BoxCalibration(*args.box)
    paths = ModelPaths.resolve(REPO / "models")
    engine = VisionEngine(paths, 1, with_embedder=False)
    model = load_liveness(list(paths.liveness), 1, calibration)

    rows = labelled(engine, model)
    if args.wider:
        wider_rows, ratios = wider(engine, model, args.wider, args.min_face)
        rows += wider_rows
        med = np.median(np.array(ratios), axis=0)
        print(
            f"WIDER box / BlazeFace box over {len(ratios)} faces: width ×{med[0]:.3f}, height ×{med[1]:.3f}, "
            f"centre shift {med[2]:+.3f} of the height"
        )
    print(f"threshold {threshold}, min_context {defaults.min_context}, {calibration}")
    for name in sorted({r.set for r in rows}):
        subset = [r for r in rows if r.set == name]
        scores = np.array([r.score for r in subset])
        contexts = np.array([r.context for r in subset])
        print(
            f"{name:18s} n={len(subset):4d} score median {np.median(scores):5.1f} min {scores.min():5.1f} "
            f"max {scores.max():5.1f}; context median {np.median(contexts):.2f}: "
            f"{rates(subset, threshold, defaults.min_context)}"
        )
        if args.verbose or len(subset) <= 8:
            for r in subset:
                print(
                    f"    {r.name:34s} {'live' if r.live else 'attack':6s} {r.score:6.1f} ctx {r.context:.2f}"
                )
    full = [r for r in rows if "/tight" not in r.set]
    print("threshold sweep, full frames only (min_context applied):")
    for t in (20, 30, 35, 40, 45, 50, 60, 70):
        lives, attacks = [r for r in full if r.live], [r for r in full if not r.live]
        print(f"  {t:3d}: {rates(lives, t, defaults.min_context)}; {rates(attacks, t, defaults.min_context)}")
    times = timing(model, engine, args.runs)
    print("timing, 1 thread (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
