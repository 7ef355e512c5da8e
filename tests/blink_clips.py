"""Door-camera clips for temporal liveness tests: a real face photo moved rigidly, with or without a blink.

How a clip is made (all from tests/data/faces, no synthetic faces):

* the face photo is held "in front of the camera": every frame is the photo (with its surroundings)
  under a similarity transform — translated, scaled and slightly rotated along smooth paths, like a
  photo or a phone screen in a hand — pasted on the brick background of tests/data/no_faces; then
  Gaussian sensor noise and a JPEG round trip (quality 70) are applied, frame by frame;
* a blink is made from the still photo by closing the eyelids: in each eye, the skin band between the
  brow and the upper lid is stretched down (cv2.remap) until the upper-lid edge with its lashes lies on
  the lower lid, blended into the face with a feathered ellipse. Where the eyes are comes from the
  real face-mesh model on the original photo. A half-closed frame goes before and after the closed
  ones (a blink is ~100–200 ms; at 25 fps that is 3–5 frames).

tests/test_blink.py checks, with the real mesh model, that the edited photos really read as closed
eyes (the eye aspect ratio drops) before any liveness test relies on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from daemon.vision.face_mesh import FaceMesh
from daemon.vision.types import Face

DATA = Path(__file__).resolve().parent / "data"
FRAME_SIZE = (640, 480)
# Face-mesh points of each eye: corner, two upper-lid points, corner, two lower-lid points.
EYE_POINTS = ((33, 160, 158, 133, 153, 144), (263, 387, 385, 362, 380, 373))


def load_photo(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / "faces" / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


def close_eyes(image: np.ndarray, mesh: FaceMesh, face: Face, closure: float = 1.0) -> np.ndarray:
    """A copy of the BGR photo with both eyes closed by ``closure`` (0 open … 1 shut)."""
    points = mesh.mesh(image, face).points[:, :2].astype(np.float64)
    out = image.copy()
    for indices in EYE_POINTS:
        out = _close_one_eye(out, points[list(indices)], closure)
    return out


def _close_one_eye(image: np.ndarray, eye: np.ndarray, closure: float) -> np.ndarray:
    """eye: the six EAR points p1..p6 (corners p1, p4; upper lid p2, p3; lower lid p6, p5).

    The eye opening (with a margin) is covered by the skin just below the lower lid, mirrored upwards;
    a closed lid shows a thin dark lash line where the lids meet. A half-closed eye covers only the
    upper half of the opening.
    """
    corner_a, corner_b = eye[0], eye[3]
    width = float(np.linalg.norm(corner_b - corner_a))
    upper = float(np.mean(eye[[1, 2], 1]))
    lower = float(np.mean(eye[[4, 5], 1]))
    opening = max(lower - upper, 0.12 * width)
    mirror = lower + 0.25 * opening  # rows above this line are replaced by the rows below, mirrored
    cover_top = upper - 0.45 * opening
    cover_bottom = cover_top + closure * (mirror - cover_top)
    x1 = math.floor(min(corner_a[0], corner_b[0]) - 0.3 * width)
    x2 = math.ceil(max(corner_a[0], corner_b[0]) + 0.3 * width)
    y1 = math.floor(cover_top - 0.5 * opening)
    y2 = math.ceil(mirror + (mirror - cover_top) + 2)
    h, w = image.shape[:2]
    x1, x2, y1, y2 = max(0, x1), min(w, x2), max(0, y1), min(h, y2)
    ys, xs = np.mgrid[y1:y2, x1:x2].astype(np.float32)
    src_y = np.where(ys < mirror, 2.0 * mirror - ys, ys).astype(np.float32)
    patch = cv2.remap(image, xs, src_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = np.zeros((y2 - y1, x2 - x1), dtype=np.float32)
    centre_x = float((corner_a[0] + corner_b[0]) / 2.0) - x1
    cv2.ellipse(
        mask,
        (round(centre_x), round((cover_top + cover_bottom) / 2.0 - y1)),
        (round(0.5 * width + 0.1 * width), max(1, round((cover_bottom - cover_top) / 2.0))),
        float(math.degrees(math.atan2(corner_b[1] - corner_a[1], corner_b[0] - corner_a[0]))),
        0.0, 360.0, 1.0, thickness=-1,
    )
    feather = max(1, int(0.05 * width)) * 2 + 1
    mask = cv2.GaussianBlur(mask, (feather, feather), 0)
    if closure >= 0.75:
        # Where the lids meet: a thin dark lash line from corner to corner, sagging like the lower lid.
        curve = np.array([corner_a, ((corner_a[0] + corner_b[0]) / 2.0, lower - 0.1 * opening), corner_b])
        shade = np.zeros_like(mask)
        line = [np.round(curve - (x1, y1)).astype(np.int32)]
        cv2.polylines(shade, line, False, 1.0, max(1, int(0.05 * width)))
        shade = cv2.GaussianBlur(shade, (3, 3), 0)
        patch = (patch.astype(np.float32) * (1.0 - 0.55 * shade[..., None])).astype(np.uint8)
        mask = np.maximum(mask, shade)
    region = image[y1:y2, x1:x2].astype(np.float32)
    blended = region * (1.0 - mask[..., None]) + patch.astype(np.float32) * mask[..., None]
    out = image.copy()
    out[y1:y2, x1:x2] = np.clip(blended, 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True)
class Motion:
    """Rigid motion of the held photo: offsets in frame pixels, scale factor and roll in degrees."""

    dx: float = 60.0
    dy: float = 25.0
    scale: float = 0.15  # relative size change over the clip (± around 1)
    roll: float = 6.0  # degrees, ±
    periods: float = 1.0  # back-and-forth cycles over the clip


def rigid_frames(
    photo: np.ndarray,
    face_box: tuple[float, float, float, float],
    frames: int,
    face_width: float = 170.0,
    motion: Motion | None = None,
    closed: dict[int, np.ndarray] | None = None,
    noise: float = 4.0,
    jpeg_quality: int = 70,
    seed: int = 0,
) -> Iterator[np.ndarray]:
    """BGR frames of ``photo`` moved rigidly; frame k shows ``closed[k]`` instead when given."""
    motion = Motion() if motion is None else motion
    closed = closed or {}
    rng = np.random.default_rng(seed)
    width, height = FRAME_SIZE
    brick = cv2.imread(str(DATA / "no_faces" / "brick.png"), cv2.IMREAD_COLOR)
    background = cv2.resize(brick, FRAME_SIZE, interpolation=cv2.INTER_LINEAR)
    fx1, fy1, fx2, fy2 = face_box
    base_scale = face_width / (fx2 - fx1)
    face_centre = ((fx1 + fx2) / 2.0, (fy1 + fy2) / 2.0)
    for k in range(frames):
        phase = 2.0 * math.pi * motion.periods * k / max(1, frames - 1)
        scale = base_scale * (1.0 + motion.scale * math.sin(phase))
        angle = motion.roll * math.sin(0.7 * phase)
        centre = (width / 2 + motion.dx * math.sin(phase), height / 2 + motion.dy * math.sin(1.3 * phase))
        matrix = cv2.getRotationMatrix2D(face_centre, angle, scale)
        matrix[:, 2] += np.array(centre) - np.array(face_centre)
        source = closed.get(k, photo)
        frame = cv2.warpAffine(
            source, matrix, FRAME_SIZE, flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_TRANSPARENT, dst=background.copy(),
        )
        noisy = frame.astype(np.float32) + rng.normal(0.0, noise, frame.shape).astype(np.float32)
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        assert ok
        yield cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def blink_schedule(
    start: int, closed_frames: int, half: np.ndarray, shut: np.ndarray
) -> dict[int, np.ndarray]:
    """Frames of one blink: half-closed, ``closed_frames`` shut, half-closed."""
    schedule = {start: half, start + closed_frames + 1: half}
    for k in range(start + 1, start + closed_frames + 1):
        schedule[k] = shut
    return schedule
