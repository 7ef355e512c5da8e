#!/usr/bin/env python3
"""Measure genuine and impostor descriptor distances with our own pipeline, and what the score
anchors (config scores.anchors) then mean as false accept / false reject rates.

Every face goes through the daemon's path: detect (BlazeFace), refine, align, embed (engine.analyze).
The distance is the Euclidean distance of the raw descriptors, as in daemon/services/scores.py.

Data (never commit it): the test faces, plus dlib's example images, which are in dlib's source tree
(examples/faces: PASCAL VOC group photos with face boxes in training.xml/testing.xml, bald_guys.jpg,
Tom_Cruise_avp_2014_4.jpg; examples/johns: 5 people × 11 LFW face chips). PyPI's dlib sdists do not
carry them; Debian's source package does (docs/SCORES.md has the commands):

    .venv/bin/python scripts/calibrate_scores.py --dlib-examples /tmp/dlib-19.24+dfsg/examples \\
        [--grid /tmp/lowest_impostors.png] [--anchors '[[0,100],[0.4,90],...]']

Identities: faces of different photos are different people except the known sets (the obama test
photos, each johns/<name> folder, the four actors of bald_guys.jpg labelled by hand by position) and
the pairs given with --same A=B after looking at the lowest impostor distances (--grid writes their
aligned chips side by side). Genuine pairs are (a) two photos of one person and (b) each face against
augmented copies of its own photo (flip, ±10° rotation, half scale, blur, JPEG q=30, ±40% brightness).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.config import PACKAGE_MODELS_DIR  # noqa: E402
from daemon.services.scores import DEFAULT_ANCHORS, ScoreMapping  # noqa: E402
from daemon.vision.boxes import box_iou  # noqa: E402
from daemon.vision.engine import FaceAnalysis, ModelPaths, VisionEngine  # noqa: E402
from daemon.vision.types import Face  # noqa: E402
from scripts.calibrate_one_to_n import (  # noqa: E402
    descriptors,
    margins,
    multi_enrolment,
    pairwise,
    quality_split,
    stranger_table,
)

TEST_FACES = REPO / "tests" / "data" / "faces"
OBAMA_SET = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")
OTHER_TEST_FACES = {"biden.jpg": "biden", "astronaut.png": "eileen_collins"}
# 32bit.png is obama2.jpg's pixels with an alpha channel: a duplicate, not a second photo.
# bald_guys.jpg: face centres (pixels of the original 1986×1545 image) → who, labelled by eye.
BALD_GUYS = {
    "vin_diesel": [(151, 169), (645, 197), (138, 470), (388, 302), (650, 529), (153, 1388)],
    "jason_statham": [(391, 117), (952, 191), (394, 528), (964, 499), (149, 788), (491, 940)],
    "dwayne_johnson": [(1594, 266), (1879, 494), (1693, 757), (1162, 1397), (1517, 1413), (1865, 1407)],
    "bruce_willis": [(1154, 859), (123, 1071), (859, 915), (1185, 1152), (453, 1346), (845, 1336)],
}
DISTANCES = (0.4, 0.45, 0.5, 0.52, 0.54, 0.55, 0.56, 0.58, 0.6)
SCORES = (50, 60, 65, 70, 75, 80, 85, 90)
BIN = 0.05


@dataclass
class Sample:
    identity: str
    source: str
    crop: np.ndarray  # RGB context around the face (the face near the centre)
    analysis: FaceAnalysis


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def context_crop(rgb: np.ndarray, box: tuple[float, float, float, float], factor: float = 2.4) -> np.ndarray:
    """A square around the face, factor × its size, padded with grey where it leaves the image."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = int(max(box[2] - box[0], box[3] - box[1]) * factor / 2)
    x1, y1 = int(cx) - half, int(cy) - half
    h, w = rgb.shape[:2]
    pad = max(0, -x1, -y1, x1 + 2 * half - w, y1 + 2 * half - h)
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    return np.ascontiguousarray(padded[y1 + pad : y1 + pad + 2 * half, x1 + pad : x1 + pad + 2 * half])


def centre_face(engine: VisionEngine, rgb: np.ndarray) -> Face | None:
    """The detected face nearest the centre of a context crop (short range first, then full range)."""
    h, w = rgb.shape[:2]
    for kind in ("short", "full"):
        faces = engine.detect(rgb, kind, min_score=0.5)
        near = [f for f in faces if abs((f.box[0] + f.box[2]) / 2 - w / 2) < w / 4]
        near = [f for f in near if abs((f.box[1] + f.box[3]) / 2 - h / 2) < h / 4]
        if near:
            return max(near, key=lambda f: f.area)
    return None


def analyze_crop(engine: VisionEngine, crop: np.ndarray) -> FaceAnalysis | None:
    face = centre_face(engine, crop)
    return None if face is None else engine.analyze(crop, face)


def add(samples: list[Sample], lost: list[str], engine, identity, source, crop) -> None:
    """Analyse one face crop and keep it, or note it as lost when no face is found near the centre."""
    analysis = analyze_crop(engine, crop)
    if analysis is None:
        lost.append(source)
    else:
        samples.append(Sample(identity, source, crop, analysis))


def load_samples(engine: VisionEngine, examples: Path) -> tuple[list[Sample], list[str]]:
    samples: list[Sample] = []
    lost: list[str] = []
    single = {name: "obama" for name in OBAMA_SET} | OTHER_TEST_FACES
    files = [(TEST_FACES / n, who) for n, who in single.items()]
    files.append((examples / "faces" / "Tom_Cruise_avp_2014_4.jpg", "tom_cruise"))
    for path, who in files:
        rgb = read_rgb(path)
        face = max(engine.find_faces(rgb), key=lambda f: f.area)
        add(samples, lost, engine, who, path.name, context_crop(rgb, face.box))
    for xml in ("training.xml", "testing.xml"):
        for image in ET.parse(examples / "faces" / xml).getroot().iter("image"):
            rgb = read_rgb(examples / "faces" / image.get("file"))
            for i, b in enumerate(image.iter("box")):
                x, y, bw, bh = (float(b.get(k)) for k in ("left", "top", "width", "height"))
                source = f"{image.get('file')}#{i}"
                add(samples, lost, engine, f"voc:{source}", source, context_crop(rgb, (x, y, x + bw, y + bh)))
    rgb = read_rgb(examples / "faces" / "bald_guys.jpg")
    for face in detect_all(engine, rgb):
        cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
        who = [n for n, pts in BALD_GUYS.items() if any(np.hypot(cx - px, cy - py) < 60 for px, py in pts)]
        source = f"bald_guys.jpg@{int(cx)},{int(cy)}"
        if len(who) != 1:
            lost.append(f"{source} (unlabelled)")
            continue
        add(samples, lost, engine, who[0], source, context_crop(rgb, face.box))
    seen: dict[str, str] = {}
    for folder in sorted((examples / "johns").iterdir()):
        for path in sorted(folder.glob("*.jpg")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:  # John_Shimkus holds one photo twice under two names
                lost.append(f"johns/{folder.name}/{path.name} (a byte-identical copy of {seen[digest]})")
                continue
            seen[digest] = path.name
            chip = read_rgb(path)  # a 150×150 chip: pad it so the detector sees the whole head
            crop = cv2.copyMakeBorder(chip, 75, 75, 75, 75, cv2.BORDER_CONSTANT, value=(128, 128, 128))
            add(samples, lost, engine, f"john:{folder.name}", f"johns/{folder.name}/{path.name}", crop)
    return samples, lost


def detect_all(engine: VisionEngine, rgb: np.ndarray) -> list[Face]:
    """Every face of a large collage: whole image plus overlapping tiles, merged."""
    h, w = rgb.shape[:2]
    faces = engine.detect(rgb, "short", min_score=0.5) + engine.detect(rgb, "full", min_score=0.5)
    for size in (500, 800):
        for y in range(0, h, size // 2):
            for x in range(0, w, size // 2):
                roi = (x, y, min(w, x + size), min(h, y + size))
                if roi[2] - roi[0] >= 50 and roi[3] - roi[1] >= 50:
                    faces += engine.detect(rgb, "short", min_score=0.6, roi=roi)
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        if all(box_iou(face.box, k.box) < 0.3 for k in kept):
            kept.append(face)
    return kept


def rotate(deg: float) -> Callable[[np.ndarray], np.ndarray]:
    def op(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return op


def jpeg(img: np.ndarray, quality: int = 30) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def augmentations(face_size: float) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    sigma = max(0.8, 0.02 * face_size)  # 2 px on a 100 px face
    return {
        "flip": lambda img: np.ascontiguousarray(img[:, ::-1]),
        "rot+10": rotate(10),
        "rot-10": rotate(-10),
        "scale0.5": lambda img: cv2.resize(img, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
        "blur": lambda img: cv2.GaussianBlur(img, (0, 0), sigma),
        "jpeg30": jpeg,
        "bright1.4": lambda img: np.clip(img.astype(np.float32) * 1.4, 0, 255).astype(np.uint8),
        "dark0.6": lambda img: (img.astype(np.float32) * 0.6).astype(np.uint8),
    }


def distance(a: FaceAnalysis, b: FaceAnalysis) -> float:
    return float(np.linalg.norm(a.embedding.astype(np.float64) - b.embedding.astype(np.float64)))


def pairs(samples: list[Sample], same: set[frozenset[str]]) -> Iterator[tuple[bool, int, int]]:
    """(same person?, i, j) for every pair of samples from different photos."""
    for i, j in itertools.combinations(range(len(samples)), 2):
        a, b = samples[i], samples[j]
        if a.source == b.source:
            continue
        yield a.identity == b.identity or frozenset((a.source, b.source)) in same, i, j


def histogram(named: dict[str, np.ndarray], top: float = 1.2) -> list[str]:
    edges = np.arange(0.0, top + BIN / 2, BIN)
    counts = {name: np.histogram(np.clip(d, 0, top - 1e-9), edges)[0] for name, d in named.items()}
    lines = ["distance    " + "".join(f"{name:>12}" for name in named)]
    for k in range(len(edges) - 1):
        row = "".join(f"{int(counts[name][k]):>12}" for name in named)
        lines.append(f"{edges[k]:.2f}–{edges[k + 1]:.2f}  {row}")
    return lines


def rate(passed: np.ndarray) -> str:
    n, k = len(passed), int(np.sum(passed))
    if n == 0:
        return "n/a"
    if k == 0:
        return f"0/{n} (<{3 / n:.1e})"  # the rule of three: the 95% upper bound when none is seen
    return f"{k}/{n} = {k / n:.1e}"


@dataclass
class Distances:
    genuine: np.ndarray  # two photos of one person
    augmented: np.ndarray  # a face against augmented copies of its own photo
    impostor: np.ndarray
    impostor_min_size: np.ndarray  # the smaller face of each impostor pair (px)
    impostor_max_size: np.ndarray
    genuine_min_size: np.ndarray


def measure(samples: list[Sample], aug: dict[str, list[float]], same: set[frozenset[str]]) -> Distances:
    genuine, impostor, g_size, i_min, i_max = [], [], [], [], []
    for is_same, i, j in pairs(samples, same):
        d = distance(samples[i].analysis, samples[j].analysis)
        sizes = (samples[i].analysis.quality.size, samples[j].analysis.quality.size)
        if is_same:
            genuine.append(d)
            g_size.append(min(sizes))
        else:
            impostor.append(d)
            i_min.append(min(sizes))
            i_max.append(max(sizes))
    return Distances(
        genuine=np.array(genuine),
        augmented=np.array([d for ds in aug.values() for d in ds]),
        impostor=np.array(impostor),
        impostor_min_size=np.array(i_min),
        impostor_max_size=np.array(i_max),
        genuine_min_size=np.array(g_size),
    )


def report(d: Distances, aug: dict[str, list[float]], mapping: ScoreMapping, min_size: float) -> None:
    print("Distance histograms (counts):")
    print("\n".join(histogram({"genuine": d.genuine, "augmented": d.augmented, "impostor": d.impostor})))
    print()
    for name, v in (("genuine", d.genuine), ("augmented", d.augmented), ("impostor", d.impostor)):
        q = np.percentile(v, [0, 0.1, 1, 5, 50, 95, 99, 100])
        print(
            f"{name:>9}: min {q[0]:.3f}  p0.1 {q[1]:.3f}  p1 {q[2]:.3f}  p5 {q[3]:.3f}  "
            f"median {q[4]:.3f}  p95 {q[5]:.3f}  p99 {q[6]:.3f}  max {q[7]:.3f}"
        )
    print("\nAugmented genuine by variant (median / max):")
    print("  " + ", ".join(f"{k} {np.median(v):.3f}/{max(v):.3f}" for k, v in aug.items() if v))
    one_big = d.impostor_max_size >= min_size
    both_big = d.impostor_min_size >= min_size
    big_genuine = d.genuine[d.genuine_min_size >= min_size]
    print(
        f"\nImpostor subsets by face size (the enrollment gate's min_face_size {min_size:.0f} px): "
        f"all {len(d.impostor)}, at least one face ≥ {min_size:.0f} px {int(one_big.sum())}, "
        f"both ≥ {min_size:.0f} px {int(both_big.sum())}; genuine (two photos) with both ≥ "
        f"{min_size:.0f} px: {len(big_genuine)}"
    )
    header = "FAR all | FAR one≥min | FAR both≥min | FRR two photos | FRR two photos both≥min | FRR augmented"
    print("\nAccept when distance ≤ t:  " + header)
    for t in DISTANCES:
        accept = d.impostor <= t
        print(
            f"  t={t:.2f}  {rate(accept)} | {rate(accept[one_big])} | {rate(accept[both_big])} | "
            f"{rate(d.genuine > t)} | {rate(big_genuine > t)} | {rate(d.augmented > t)}"
        )
    print("\nAccept when score ≥ S (the configured anchors):  " + header)
    score = {k: np.asarray(mapping.score(v)) for k, v in vars(d).items() if "size" not in k}
    big_score = np.asarray(mapping.score(big_genuine))
    for s in SCORES:
        accept = score["impostor"] >= s
        print(
            f"  S={s:>3} (d ≤ {mapping.max_distance(s):.3f})  {rate(accept)} | {rate(accept[one_big])} | "
            f"{rate(accept[both_big])} | {rate(score['genuine'] < s)} | {rate(big_score < s)} | "
            f"{rate(score['augmented'] < s)}"
        )


def extremes(
    samples: list[Sample], same: set[frozenset[str]], min_size: float
) -> list[tuple[float, int, int]]:
    """Print the closest impostor and the farthest genuine pairs; return the closest impostors (the
    16 closest of all, then the 8 closest of those where both faces are at least min_size)."""
    impostors, genuine = [], []
    for is_same, i, j in pairs(samples, same):
        (genuine if is_same else impostors).append((distance(samples[i].analysis, samples[j].analysis), i, j))
    impostors.sort()
    genuine.sort(reverse=True)

    def name(k: int) -> str:
        s = samples[k]
        return f"{s.source} [{s.identity}, {s.analysis.quality.size:.0f} px]"

    print("\nLowest impostor distances:")
    for dist, i, j in impostors[:16]:
        print(f"  {dist:.3f}  {name(i)}  vs  {name(j)}")
    big = [p for p in impostors if min(samples[k].analysis.quality.size for k in p[1:]) >= min_size]
    print(f"Lowest impostor distances with both faces ≥ {min_size:.0f} px:")
    for dist, i, j in big[:8]:
        print(f"  {dist:.3f}  {name(i)}  vs  {name(j)}")
    print("Highest genuine distances (two photos):")
    for dist, i, j in genuine[:8]:
        print(f"  {dist:.3f}  {name(i)}  vs  {name(j)}")
    print("Lowest genuine distances (two photos; near-duplicate photos show up here):")
    for dist, i, j in genuine[::-1][:6]:
        print(f"  {dist:.3f}  {name(i)}  vs  {name(j)}")
    return impostors[:16] + big[:8]


def write_grid(path: Path, samples: list[Sample], lowest: list[tuple[float, int, int]]) -> None:
    """The aligned chips of the given impostor pairs, two by two, with the distance."""
    rows = []
    for d, i, j in lowest:
        row = np.hstack([samples[i].analysis.chip, samples[j].analysis.chip])
        row = cv2.cvtColor(row, cv2.COLOR_RGB2BGR).copy()
        cv2.putText(row, f"{d:.3f}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
        rows.append(row)
    while len(rows) % 4:
        rows.append(np.zeros_like(rows[0]))
    grid = np.vstack([np.hstack(rows[k : k + 4]) for k in range(0, len(rows), 4)])
    cv2.imwrite(str(path), grid)
    print(f"\nwrote {path}: the impostor pairs listed above, in that order (row-major, 4 pairs a row)")


def one_to_n(
    samples: list[Sample], same: set[frozenset[str]], mapping: ScoreMapping, min_size: float
) -> None:
    dist = pairwise(descriptors(samples))
    at80 = mapping.max_distance(80)
    print(f"\nSeveral enrolment photos per person (accept at score 80, d ≤ {at80:.3f}):")
    print("\n".join(multi_enrolment(samples, dist, at80)))
    print("\n1:N search simulation at groupScore 80:")
    print("\n".join(margins(samples, dist, mapping, 80)))
    genuine = [(i, j, float(dist[i, j])) for is_same, i, j in pairs(samples, same) if is_same]
    print(f"\nGenuine pairs by quality (the lower of the two faces), accept at d ≤ {at80:.3f}:")
    print("\n".join(quality_split(samples, genuine, at80)))
    far: dict[int, tuple[int, int]] = {}
    impostor = [
        float(dist[i, j])
        for is_same, i, j in pairs(samples, same)
        if not is_same and max(samples[i].analysis.quality.size, samples[j].analysis.quality.size) >= min_size
    ]
    scores = np.asarray(mapping.score(np.array(impostor)))
    for s in (70, 80, 90):
        far[s] = (int((scores >= s).sum()), len(scores))
    print(
        "\nExpected stranger-accept rate of a library of N faces "
        f"(impostor pairs with a face ≥ {min_size:.0f} px):"
    )
    limits = {s: mapping.max_distance(s) for s in (70, 80, 90)}
    print("\n".join(stranger_table(far, np.array(impostor), limits)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dlib-examples", type=Path, required=True, help="dlib's examples/ directory")
    parser.add_argument("--anchors", type=json.loads, default=DEFAULT_ANCHORS, help="JSON [[d, s], ...]")
    parser.add_argument(
        "--same",
        action="append",
        default=[],
        metavar="SOURCE_A=SOURCE_B",
        help="two faces found to be one person (by eye): not an impostor pair",
    )
    parser.add_argument("--grid", type=Path, help="PNG of the closest impostor pairs' aligned chips")
    parser.add_argument("--min-size", type=float, default=64, help="face size split (px), default 64")
    parser.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--no-flip", action="store_true", help="one view per face (models.flip_average off)")
    args = parser.parse_args()
    paths = ModelPaths.resolve(PACKAGE_MODELS_DIR, args.variant)
    engine = VisionEngine(paths, num_threads=2, flip_average=not args.no_flip)
    print(f"model: {engine.embedder.model_id}, flip_average: {engine.embedder.flip_average}")
    samples, lost = load_samples(engine, args.dlib_examples)
    same = {frozenset(pair.split("=", 1)) for pair in args.same}
    aug: dict[str, list[float]] = {}
    aug_lost = 0
    for sample in samples:
        for name, op in augmentations(min(sample.analysis.face.width, sample.analysis.face.height)).items():
            variant = analyze_crop(engine, op(sample.crop))
            if variant is None:
                aug_lost += 1
            else:
                aug.setdefault(name, []).append(distance(sample.analysis, variant))
    identities = {s.identity for s in samples}
    print(f"faces analysed: {len(samples)} ({len(identities)} identities); left out: {len(lost)}")
    for source in lost:
        print(f"  left out: {source}")
    distances = measure(samples, aug, same)
    print(
        f"pairs: genuine (two photos) {len(distances.genuine)}, genuine (augmented) "
        f"{len(distances.augmented)} (+{aug_lost} variants where no face was found), "
        f"impostor {len(distances.impostor)}; anchors {json.dumps(args.anchors)}\n"
    )
    mapping = ScoreMapping(args.anchors)
    report(distances, aug, mapping, args.min_size)
    one_to_n(samples, same, mapping, args.min_size)
    lowest = extremes(samples, same, args.min_size)
    if args.grid:
        write_grid(args.grid, samples, lowest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
