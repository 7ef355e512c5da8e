"""Offline tools of the `facegate` command (detect, embed, compare): the vision core without a daemon.

They read image files, decode them with the same limits-checked decoder as the API (any size accepted
here) and print one line per image; with --json, one JSON object per image and line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from daemon.app import engine_from_config
from daemon.config import Config, load_config
from daemon.errors import FacegateError
from daemon.services.scores import ScoreMapping
from daemon.vision.detectors.registry import ALIASES, DETECTOR_BACKENDS
from daemon.vision.engine import ModelPaths, VisionEngine
from daemon.vision.image import ImageLimits, decode_image
from daemon.vision.types import Face

FILE_LIMITS = ImageLimits(max_bytes=64 * 1024 * 1024, max_width=16384, max_height=16384)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("detect", help="detect faces in image files")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument(
        "--model",
        choices=(*ALIASES, *DETECTOR_BACKENDS),
        default="short",
        help="detector backend (short, full: the BlazeFace ones)",
    )
    p.add_argument("--min-score", type=float, help="score threshold (default: the model's)")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line")
    p.set_defaults(func=_cmd_detect)

    p = sub.add_parser("embed", help="embedding of the largest face of each image")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per image and line")
    p.set_defaults(func=_cmd_embed)

    p = sub.add_parser("compare", help="distance and score between the largest faces of two images")
    p.add_argument("image_a", type=Path)
    p.add_argument("image_b", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_compare)

    for name in ("detect", "embed", "compare"):
        sub.choices[name].add_argument("--config", type=Path, help="YAML config (models dir, variant)")


def _engine(config: Config) -> VisionEngine:
    paths = ModelPaths.resolve(config.models_path, config.models.embedding, config.liveness.enabled)
    return engine_from_config(config, paths)


def _read(path: Path) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FacegateError(f"{path}: {exc.strerror}") from exc
    return decode_image(data, FILE_LIMITS).rgb


def face_json(face: Face) -> dict[str, Any]:
    return {
        "box": [round(v, 1) for v in face.box],
        "score": round(face.score, 4),
        "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in face.keypoints],
    }


def _for_each_image(paths: list[Path], work: Callable[[Path], None]) -> int:
    """Run work(path) per image; a bad image is reported and the others still run (exit 1 if any)."""
    status = 0
    for path in paths:
        try:
            work(path)
        except FacegateError as exc:
            print(json.dumps({"path": str(path), "error": str(exc)}), file=sys.stderr)
            status = 1
    return status


def _cmd_detect(args: argparse.Namespace) -> int:
    engine = _engine(load_config(args.config))

    def work(path: Path) -> None:
        faces = engine.detect(_read(path), args.model, args.min_score)
        if args.json:
            print(json.dumps({"path": str(path), "faces": [face_json(f) for f in faces]}))
            return
        print(f"{path}: {len(faces)} face(s)")
        for face in faces:
            x1, y1, x2, y2 = face.box
            print(f"  box ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})  score {face.score:.3f}")

    return _for_each_image(args.images, work)


def _cmd_embed(args: argparse.Namespace) -> int:
    engine = _engine(load_config(args.config))

    def work(path: Path) -> None:
        analysis = engine.analyze_largest(_read(path))
        record: dict[str, Any] = {"path": str(path), "faces": [], "model": engine.embedder.model_id}
        if analysis is not None:
            record["faces"] = [face_json(analysis.face)]
            record["embedding"] = [round(float(v), 6) for v in analysis.embedding]
        if args.json:
            print(json.dumps(record))
        elif analysis is None:
            print(f"{path}: no face")
        else:
            head = " ".join(f"{v:+.3f}" for v in analysis.embedding[:6])
            print(f"{path}: {len(analysis.embedding)}-d embedding [{head} …]")

    return _for_each_image(args.images, work)


def _cmd_compare(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    engine = _engine(config)
    mapping = ScoreMapping(config.scores.anchors)
    analyses = []
    for path in (args.image_a, args.image_b):
        analysis = engine.analyze_largest(_read(path))
        if analysis is None:
            raise FacegateError(f"{path}: no face found")
        analyses.append(analysis)
    distance = float(((analyses[0].embedding - analyses[1].embedding) ** 2).sum() ** 0.5)
    score = mapping.score(distance)
    if args.json:
        print(json.dumps({"distance": round(distance, 4), "score": round(score, 2)}))
    else:
        print(f"distance {distance:.4f}  score {score:.1f}")
    return 0
