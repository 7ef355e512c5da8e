#!/usr/bin/env python3
"""Benchmark the blur API: detection recall by face size, and end-to-end HTTP latency.

  scripts/bench_privacy.py recall [--scenes 30] [--imglab FILE.xml ...]
  scripts/bench_privacy.py http [--requests 40] [--clients 1 4]
  scripts/bench_privacy.py all
  scripts/bench_privacy.py wider DIR [--no-faces DIR ...] [--detector yunet] [--min-score S]
  scripts/bench_privacy.py side-by-side --peer-cmd "CMD" --peer-url URL [--requests 40] [--rounds 2]

wider: recall at IoU ≥ 0.5 for faces ≥ 16/32/64 px on a folder with boxes.json (WIDER-style photos; see
scripts/bench_wider.py), and the false faces on no-face folders, through the blur API's detector with
the default settings (or the overrides given).

side-by-side: Facegate (result cache off) and another blur service started from --peer-cmd, the same
client and JPEGs for both, rows alternating (scripts/bench_sidebyside.py).

recall: dlib's examples/faces (PASCAL VOC photos with imglab XML boxes) is in no dlib sdist on PyPI
(checked 18.17.100, 19.0.0, 19.7.0, 19.24.6 and 20.0.1: their MANIFEST.in ships only dlib/, tools/python
and python_examples/), so the labelled set is generated here and never written to disk: the test faces
(tests/data/faces, one face each, their box from the full-range detector at native resolution) are
pasted with a feathered oval mask at known sizes (12–256 px tall, log-uniform) and random positions
onto the no-face test images scaled to 1920×1080 and 640×480, then JPEG-compressed (q85). A detection
matches a face at IoU ≥ 0.5 (boxes of the same detector family, so IoU compares like with like). Also
counted: detections on the no-face test images. --imglab reads dlib/imglab XML files (e.g.
examples/faces/testing.xml of a dlib git checkout, images beside it); their boxes are square, so each
detection is compared as the square of side sqrt(w·h) around its centre (dlib's boxes sit a little
lower on the face: expect a lower match rate than on the generated scenes).

http: the daemon as a subprocess on 127.0.0.1 (a free port, a temp state dir), POST /api/v1/blur-faces
with a 1920×1080 and a 3840×2160 JPEG holding pasted faces, 1 and 4 concurrent clients; p50/p99
latency and requests/s. Prints markdown tables; figures go to docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from daemon.config import PACKAGE_MODELS_DIR, load_config  # noqa: E402
from daemon.services.privacy import detect_settings  # noqa: E402
from daemon.vision.boxes import box_iou  # noqa: E402
from daemon.vision.engine import ModelPaths, VisionEngine  # noqa: E402
from daemon.vision.image import encode_jpeg  # noqa: E402
from daemon.vision.privacy_detect import (  # noqa: E402
    PrivacyDetectSettings,
    detect_for_privacy,
)
from scripts.daemon_process import start_daemon  # noqa: E402

FACES = ROOT / "tests" / "data" / "faces"
NO_FACES = ROOT / "tests" / "data" / "no_faces"
SOURCE_FACES = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png")
SIZE_BUCKETS = (16, 32, 64)
Box = tuple[float, float, float, float]


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@dataclass(frozen=True)
class SourceFace:
    image: np.ndarray
    box: Box  # the face box in image


def source_faces(engine: VisionEngine) -> list[SourceFace]:
    """The test faces with their boxes (the full-range detector at native size), and mirror images."""
    out = []
    for name in SOURCE_FACES:
        rgb = read_rgb(FACES / name)
        face = max(engine.detect(rgb, "full", 0.5), key=lambda f: f.score)
        out.append(SourceFace(rgb, face.box))
        x1, y1, x2, y2 = face.box
        w = rgb.shape[1]
        out.append(SourceFace(np.ascontiguousarray(rgb[:, ::-1]), (w - x2, y1, w - x1, y2)))
    return out


def paste_face(canvas: np.ndarray, src: SourceFace, height: float, cx: float, cy: float) -> Box:
    """Paste src's face (plus some surroundings, feathered) so its box is `height` tall at (cx, cy)."""
    x1, y1, x2, y2 = src.box
    w, h = x2 - x1, y2 - y1
    k = height / h
    margin = 0.6
    sx1, sy1 = max(0, int(x1 - margin * w)), max(0, int(y1 - margin * h))
    sx2 = min(src.image.shape[1], int(x2 + margin * w))
    sy2 = min(src.image.shape[0], int(y2 + margin * h))
    patch = src.image[sy1:sy2, sx1:sx2]
    pw, ph = max(1, round(patch.shape[1] * k)), max(1, round(patch.shape[0] * k))
    patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    fcx, fcy = ((x1 + x2) / 2 - sx1) * k, ((y1 + y2) / 2 - sy1) * k
    mask = np.zeros((ph, pw), np.float32)
    axes = (max(1, int(w * k * 0.95)), max(1, int(h * k * 1.2)))
    cv2.ellipse(mask, (int(fcx), int(fcy)), axes, 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.6, w * k * 0.12))[:, :, None]
    ox, oy = round(cx - fcx), round(cy - fcy)
    ch, cw = canvas.shape[:2]
    ax1, ay1, ax2, ay2 = max(0, ox), max(0, oy), min(cw, ox + pw), min(ch, oy + ph)
    region = canvas[ay1:ay2, ax1:ax2].astype(np.float32)
    m = mask[ay1 - oy : ay2 - oy, ax1 - ox : ax2 - ox]
    p = patch[ay1 - oy : ay2 - oy, ax1 - ox : ax2 - ox]
    canvas[ay1:ay2, ax1:ax2] = np.clip(region * (1 - m) + p * m, 0, 255).astype(np.uint8)
    return (cx - w * k / 2, cy - h * k / 2, cx + w * k / 2, cy + h * k / 2)


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """image scaled and centre-cropped to exactly width×height."""
    h, w = image.shape[:2]
    k = max(width / w, height / h)
    big = cv2.resize(image, (math.ceil(w * k), math.ceil(h * k)), interpolation=cv2.INTER_LINEAR)
    y, x = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y : y + height, x : x + width])


def make_scene(
    rng: random.Random,
    sources: list[SourceFace],
    backgrounds: list[np.ndarray],
    size: tuple[int, int],
    faces: int,
    min_h: float,
    max_h: float,
) -> tuple[np.ndarray, list[Box]]:
    """A JPEG-compressed scene with up to `faces` non-overlapping faces and their boxes."""
    width, height = size
    canvas = cover(rng.choice(backgrounds), width, height)
    taken: list[Box] = []
    boxes = []
    for _ in range(faces):
        for _attempt in range(30):
            fh = math.exp(rng.uniform(math.log(min_h), math.log(max_h)))
            pad = fh * 1.3
            cx, cy = rng.uniform(pad, width - pad), rng.uniform(pad, height - pad)
            area = (cx - pad, cy - pad, cx + pad, cy + pad)
            if all(area[2] < t[0] or area[0] > t[2] or area[3] < t[1] or area[1] > t[3] for t in taken):
                break
        else:
            continue
        taken.append(area)
        src = rng.choice(sources)
        gain = rng.uniform(0.75, 1.15)
        box = paste_face(canvas, src, fh, cx, cy)
        x1, y1, x2, y2 = (int(v) for v in area)
        region = canvas[max(0, y1) : y2, max(0, x1) : x2]
        region[:] = np.clip(region.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        boxes.append(box)
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    scene = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return scene, boxes


def as_square(box: Box) -> Box:
    x1, y1, x2, y2 = box
    side = math.sqrt(max(0.0, x2 - x1) * max(0.0, y2 - y1))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def count_matches(truth: list[Box], found: list[Box], threshold: float = 0.5) -> tuple[list[bool], int]:
    """Greedy one-to-one matching: which true boxes were found, and how many detections matched none."""
    pairs = sorted(
        ((box_iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True
    )
    hit, used = [False] * len(truth), [False] * len(found)
    for score, i, j in pairs:
        if score < threshold:
            break
        if not hit[i] and not used[j]:
            hit[i] = used[j] = True
    extra = sum(
        1 for j, f in enumerate(found) if not used[j] and max((box_iou(f, t) for t in truth), default=0) < 0.1
    )
    return hit, extra


@dataclass
class RecallResult:
    name: str
    found: dict[int, list[int]]  # bucket -> [found, total]
    extra: int  # detections matching no face (IoU < 0.1 with every face)
    no_face_detections: int
    ms: float  # mean detection time per scene
    passes: float  # mean model runs per scene


def bucket_table(heights: list[float], hits: list[bool]) -> dict[int, list[int]]:
    table = {b: [0, 0] for b in SIZE_BUCKETS}
    for h, ok in zip(heights, hits, strict=True):
        for b in SIZE_BUCKETS:
            if h >= b:
                table[b][0] += ok
                table[b][1] += 1
    return table


def evaluate(
    engine: VisionEngine,
    name: str,
    settings: PrivacyDetectSettings,
    scenes: list[tuple[np.ndarray, list[Box]]],
    no_faces: list[np.ndarray],
    square: bool = False,
) -> RecallResult:
    heights: list[float] = []
    hits: list[bool] = []
    extra = 0
    times = []
    counter = CountingEngine(engine)
    for image, truth in scenes:
        start = time.perf_counter()
        faces = detect_for_privacy(counter, image, settings)
        times.append(time.perf_counter() - start)
        found = [as_square(f.box) if square else f.box for f in faces]
        hit, unmatched = count_matches(truth, found)
        heights += [t[3] - t[1] for t in truth]
        hits += hit
        extra += unmatched
    false_hits = sum(len(detect_for_privacy(engine, img, settings)) for img in no_faces)
    return RecallResult(
        name,
        bucket_table(heights, hits),
        extra,
        false_hits,
        1000 * float(np.mean(times)),
        counter.runs / max(1, len(scenes)),
    )


class CountingEngine:
    """An engine that counts its model runs (passes and checks)."""

    def __init__(self, engine: VisionEngine) -> None:
        self.engine = engine
        self.runs = 0

    def detect(self, *args, **kwargs):
        self.runs += 1
        return self.engine.detect(*args, **kwargs)


def variants(base: PrivacyDetectSettings) -> list[tuple[str, PrivacyDetectSettings]]:
    return [
        ("whole frame only", replace(base, tiling="none")),
        ("whole frame + short-range", replace(base, tiling="none", models="both")),
        ("grid 384", replace(base, tiling="grid", tile_size=384)),
        ("pyramid 384", replace(base, tiling="pyramid", tile_size=384)),
        ("grid 512", replace(base, tiling="grid", tile_size=512)),
        ("grid 640, no checks", replace(base, tiling="grid", tile_size=640, verify=False)),
        (
            "grid 640, tile threshold = min_score",
            replace(base, tiling="grid", tile_size=640, tile_min_score=None),
        ),
        ("grid 768", replace(base, tiling="grid", tile_size=768)),
        ("grid 768, tile threshold 0.2", replace(base, tiling="grid", tile_size=768, tile_min_score=0.2)),
        ("configured default", base),
    ]


def print_recall_table(title: str, results: list[RecallResult]) -> None:
    print(f"\n### {title}\n")
    head = " | ".join(f"≥{b} px" for b in SIZE_BUCKETS)
    print(f"| variant | {head} | unmatched det. | det. on no-face imgs | runs/img | ms/img |")
    print("|---|" + "---|" * (len(SIZE_BUCKETS) + 4))
    for r in results:
        cells = " | ".join(
            f"{100 * f / t:.1f}% ({f}/{t})" if t else "–" for f, t in (r.found[b] for b in SIZE_BUCKETS)
        )
        print(f"| {r.name} | {cells} | {r.extra} | {r.no_face_detections} | {r.passes:.1f} | {r.ms:.1f} |")


def read_imglab(path: Path) -> list[tuple[np.ndarray, list[Box]]]:
    """Images and face boxes of a dlib/imglab XML file (boxes marked ignore are left out)."""
    scenes = []
    for image in ET.parse(path).getroot().iter("image"):
        boxes = []
        for b in image.iter("box"):
            if b.get("ignore") == "1":
                continue
            left, top = float(b.get("left")), float(b.get("top"))
            boxes.append((left, top, left + float(b.get("width")), top + float(b.get("height"))))
        scenes.append((read_rgb(path.parent / image.get("file")), boxes))
    return scenes


def cmd_recall(args: argparse.Namespace) -> None:
    config = load_config(None, environ={})
    base = detect_settings(config.privacy)
    engine = VisionEngine(ModelPaths.resolve(PACKAGE_MODELS_DIR), 1)
    rng = random.Random(args.seed)
    sources = source_faces(engine)
    backgrounds = [read_rgb(p) for p in sorted(NO_FACES.iterdir())]
    no_faces = list(backgrounds)
    sets = {
        "1920×1080 scenes, 8 faces each, 12–256 px": [
            make_scene(rng, sources, backgrounds, (1920, 1080), 8, 12, 256) for _ in range(args.scenes)
        ],
        "640×480 scenes, 5 faces each, 12–128 px": [
            make_scene(rng, sources, backgrounds, (640, 480), 5, 12, 128) for _ in range(args.scenes)
        ],
    }
    for xml in args.imglab or []:
        sets[f"imglab {xml} (square boxes)"] = read_imglab(Path(xml))
    print_header(f"Detection recall by face height (IoU ≥ 0.5), min_score {base.min_score:.2f}", engine)
    for title, scenes in sets.items():
        square = title.startswith("imglab")
        results = [evaluate(engine, n, s, scenes, no_faces, square) for n, s in variants(base)]
        print_recall_table(title, results)


def model_run_ms(engine: VisionEngine) -> str:
    """Median and best time of one full-range run now: how loaded the machine is (idle x86 core ~6 ms)."""
    image = np.zeros((1080, 1920, 3), np.uint8)
    times = []
    for _ in range(40):
        start = time.perf_counter()
        engine.detect(image, "full", 0.5, roi=(0, 0, 640, 640))
        times.append(time.perf_counter() - start)
    median, best = np.median(times) * 1000, min(times) * 1000
    return f"one full-range run (640-px tile): median {median:.1f} ms, best {best:.1f} ms"


def print_header(title: str, engine: VisionEngine | None = None) -> None:
    print(f"\n## {title}\n")
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; command: {' '.join(sys.argv)}"
    )
    if engine is not None:
        print(f"\nload check: {model_run_ms(engine)}; load average {os.getloadavg()[0]:.1f}")


# --- HTTP ------------------------------------------------------------------------------------------------


async def run_clients(
    url: str, token: str, body: bytes, clients: int, requests: int
) -> tuple[list[float], float]:
    """Each client posts `requests / clients` times in a row; latencies (s) and wall time (s)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []

    async def one(session) -> None:
        form = aiohttp.FormData()
        form.add_field("image", body, filename="scene.jpg", content_type="image/jpeg")
        start = time.perf_counter()
        async with session.post(url + "/api/v1/blur-faces", data=form, headers=headers) as r:
            await r.read()
            if r.status != 200:
                raise SystemExit(f"HTTP {r.status}: {(await r.text())[:200]}")
        latencies.append(time.perf_counter() - start)

    async def client(session, n: int) -> None:
        for _ in range(n):
            await one(session)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        for _ in range(3):
            await one(session)  # warm-up
        latencies.clear()
        start = time.perf_counter()
        per_client = max(1, requests // clients)
        await asyncio.gather(*(client(session, per_client) for _ in range(clients)))
        return latencies, time.perf_counter() - start


def http_variants() -> list[tuple[str, dict[str, str]]]:
    return [
        ("default (tiles + checks)", {}),
        (
            "tiles of 768 px, tile threshold 0.2",
            {"FACEGATE_PRIVACY_TILE_SIZE": "768", "FACEGATE_PRIVACY_TILE_MIN_SCORE": "0.2"},
        ),
        ("whole frame only (as the seed)", {"FACEGATE_PRIVACY_TILING": "none"}),
    ]


def http_scenes(seed: int) -> tuple[VisionEngine, dict[str, bytes]]:
    """The engine and the two JPEG scenes (1080p and 4K, 8 faces each) the HTTP benchmarks send."""
    engine = VisionEngine(ModelPaths.resolve(PACKAGE_MODELS_DIR), 1)
    rng = random.Random(seed)
    sources = source_faces(engine)
    backgrounds = [read_rgb(p) for p in sorted(NO_FACES.iterdir())]
    images = {}
    for label, size in (("1920×1080", (1920, 1080)), ("3840×2160", (3840, 2160))):
        scene, _ = make_scene(rng, sources, backgrounds, size, 8, size[1] / 40, size[1] / 5)
        images[label] = encode_jpeg(scene, 90)
    return engine, images


def cmd_http(args: argparse.Namespace) -> None:
    engine, images = http_scenes(args.seed)
    print_header("POST /api/v1/blur-faces over HTTP (daemon subprocess on 127.0.0.1, show_box=true)", engine)
    print("\n| variant | image | clients | requests | p50 ms | p99 ms | requests/s |")
    print("|---|---|---|---|---|---|---|")
    for name, env in http_variants():
        with tempfile.TemporaryDirectory(prefix="facegate-bench-") as tmp:
            daemon = start_daemon(
                Path(tmp), {"FACEGATE_LOGGING_LEVEL": "warning", "FACEGATE_PRIVACY_CACHE_ENTRIES": "0", **env}
            )
            token = daemon.token
            try:
                for label, body in images.items():
                    for clients in args.clients:
                        lat, wall = asyncio.run(run_clients(daemon.url, token, body, clients, args.requests))
                        p50, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 99))
                        print(
                            f"| {name} | {label} ({len(body) // 1024} kB) | {clients} | {len(lat)} | "
                            f"{p50:.1f} | {p99:.1f} | {len(lat) / wall:.1f} |"
                        )
            finally:
                daemon.stop()
    with tempfile.TemporaryDirectory(prefix="facegate-bench-") as tmp:
        daemon = start_daemon(Path(tmp), {"FACEGATE_LOGGING_LEVEL": "warning"})
        token = daemon.token
        try:
            body = images["1920×1080"]
            lat, wall = asyncio.run(run_clients(daemon.url, token, body, 1, args.requests))
            p50, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 99))
            print(
                f"| cache on, same image again (hits) | 1920×1080 | 1 | {len(lat)} | "
                f"{p50:.1f} | {p99:.1f} | {len(lat) / wall:.1f} |"
            )
        finally:
            daemon.stop()


def cmd_wider(args: argparse.Namespace) -> None:
    from bench_wider import TABLE_HEADER, score

    config = load_config(None, environ={})
    settings = detect_settings(config.privacy, args.detector, accurate=args.accurate, zoom=True)
    if args.min_score is not None:
        settings = replace(settings, min_score=args.min_score)
    if args.max_side is not None:
        settings = replace(settings, max_side=args.max_side)
    if args.zoom_side is not None:
        settings = replace(settings, zoom_side=args.zoom_side)
    if args.zoom_max_face is not None:
        settings = replace(settings, zoom_max_face=args.zoom_max_face)
    if args.zoom_check_score is not None:
        settings = replace(settings, zoom_check_score=args.zoom_check_score)
    engine = VisionEngine(ModelPaths.resolve(PACKAGE_MODELS_DIR), args.threads)
    print_header(f"Recall on {args.folder.name} (privacy detector {settings.detector})", engine)
    no_faces = [NO_FACES, *args.no_faces]

    def detect(rgb: np.ndarray) -> list[Box]:
        return [f.box for f in detect_for_privacy(engine, rgb, settings)]

    result = score(detect, args.folder, no_faces)
    print(f"\nno-face folders: {', '.join(str(f) for f in no_faces)}; false faces on {result.false_images}\n")
    print(TABLE_HEADER)
    print(result.row(
        f"{settings.detector}, min_score {settings.min_score}, max_side {settings.max_side}, "
        f"zoom_side {settings.zoom_side}, zoom_max_face {settings.zoom_max_face}, "
        f"zoom_check_score {settings.zoom_check_score}"
    ))


def cmd_side_by_side(args: argparse.Namespace) -> None:
    from bench_sidebyside import interleaved_rows, side_by_side, start_peer, stop_peer

    engine, images = http_scenes(args.seed)
    print_header("Side by side: POST /api/v1/blur-faces, Facegate (cache off) and the peer service", engine)
    peer = start_peer(args.peer_cmd, args.peer_url)
    try:
        with tempfile.TemporaryDirectory(prefix="facegate-bench-") as tmp:
            env = {"FACEGATE_PRIVACY_CACHE_ENTRIES": "0"}
            env.update(dict(kv.split("=", 1) for kv in args.facegate_env))
            daemon = start_daemon(Path(tmp), {"FACEGATE_LOGGING_LEVEL": "warning", **env})
            token = daemon.token
            try:
                services = [("Facegate", daemon.url, token), ("peer", args.peer_url.rstrip("/"), "")]
                interleaved_rows(services, images, args.requests)
                side_by_side(run_clients, services, images, args.clients, args.requests, args.rounds)
            finally:
                daemon.stop()
    finally:
        stop_peer(peer)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    sub = parser.add_subparsers(dest="command", required=True)
    recall = sub.add_parser("recall", help="detection recall by face size")
    recall.add_argument("--scenes", type=int, default=30, help="scenes per image size")
    recall.add_argument("--imglab", action="append", help="a dlib/imglab XML file with face boxes")
    http = sub.add_parser("http", help="end-to-end latency over HTTP")
    http.add_argument("--requests", type=int, default=40, help="timed requests per row")
    http.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    both = sub.add_parser("all", help="recall, then http")
    both.add_argument("--scenes", type=int, default=30)
    both.add_argument("--imglab", action="append")
    both.add_argument("--requests", type=int, default=40)
    both.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    wider = sub.add_parser("wider", help="recall on a folder of photos with boxes.json")
    wider.add_argument("folder", type=Path)
    wider.add_argument("--no-faces", type=Path, action="append", default=[], help="more no-face folders")
    wider.add_argument("--detector", help="backend (default: privacy.detector)")
    wider.add_argument("--min-score", type=float)
    wider.add_argument("--max-side", type=int)
    wider.add_argument("--accurate", action="store_true", help="the settings of accurate=true requests")
    wider.add_argument("--zoom-side", type=int, help="privacy.zoom_side (0: no small-face pass)")
    wider.add_argument("--zoom-max-face", type=int, help="privacy.zoom_max_face")
    wider.add_argument("--zoom-check-score", type=float, help="privacy.zoom_check_score")
    wider.add_argument("--threads", type=int, default=1)
    sbs = sub.add_parser("side-by-side", help="Facegate and a peer blur service in the same run")
    sbs.add_argument("--peer-cmd", required=True, help="shell command starting the peer service")
    sbs.add_argument("--peer-url", required=True, help="its base URL, e.g. http://127.0.0.1:5000")
    sbs.add_argument("--facegate-env", nargs="*", default=[], help="FACEGATE_…=value overrides")
    sbs.add_argument("--requests", type=int, default=40)
    sbs.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    sbs.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if args.command == "wider":
        cmd_wider(args)
    if args.command == "side-by-side":
        cmd_side_by_side(args)
    if args.command in ("recall", "all"):
        cmd_recall(args)
    if args.command in ("http", "all"):
        cmd_http(args)


if __name__ == "__main__":
    main()
