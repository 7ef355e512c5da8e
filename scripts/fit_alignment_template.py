#!/usr/bin/env python3
"""Fit where BlazeFace's eyes and mouth land in dlib's 150×150 face chip (daemon/vision/align.py).

For each test face, dlib's own chip transform (tests/data/dlib_reference.npz, written by
scripts/convert_embedding_model.py) maps our refined BlazeFace keypoints into dlib's chip; the mean over
the faces is the template. Prints the per-face positions, the fitted template, and the cosine between
our aligned embedding and dlib's reference descriptor for each face, with the template in the code and
with the fitted one.

    .venv/bin/python scripts/fit_alignment_template.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daemon.config import PACKAGE_MODELS_DIR  # noqa: E402
from daemon.vision.align import ALIGN_KEYPOINTS, CHIP_TEMPLATE, similarity_transform, warp_chip  # noqa: E402
from daemon.vision.engine import ModelPaths, VisionEngine  # noqa: E402
from daemon.vision.image import ImageLimits, decode_image  # noqa: E402


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> int:
    ref = np.load(REPO / "tests" / "data" / "dlib_reference.npz")
    engine = VisionEngine(ModelPaths.resolve(PACKAGE_MODELS_DIR, "fp32"))
    limits = ImageLimits(max_bytes=64 << 20, max_width=8192, max_height=8192)
    positions, faces, images = [], [], []
    for name, affine in zip(ref["names"], ref["chip_affine"], strict=True):
        image = decode_image((REPO / "tests" / "data" / "faces" / str(name)).read_bytes(), limits).rgb
        face = engine.refine(image, max(engine.find_faces(image), key=lambda f: f.area))
        points = face.keypoints[list(ALIGN_KEYPOINTS)].astype(np.float64)
        in_chip = np.c_[points, np.ones(len(points))] @ affine.T
        positions.append(in_chip)
        faces.append(face)
        images.append(image)
        print(f"{name:26s} " + "  ".join(f"({x:6.1f}, {y:6.1f})" for x, y in in_chip))
    fitted = np.mean(positions, axis=0)
    spread = np.std(positions, axis=0)
    print("fitted template:", np.round(fitted, 1).tolist(), " std:", np.round(spread, 1).tolist())
    for label, template in (("code", CHIP_TEMPLATE), ("fitted", fitted)):
        cosines = []
        for face, image, descriptor in zip(faces, images, ref["descriptors"], strict=True):
            matrix = similarity_transform(face.keypoints[list(ALIGN_KEYPOINTS)], template)
            cosines.append(cosine(engine.embedder.embed(warp_chip(image, matrix)), descriptor))
        print(
            f"{label:6s} template: cosine to dlib min {min(cosines):.4f} mean {np.mean(cosines):.4f}",
            np.round(cosines, 4).tolist(),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
