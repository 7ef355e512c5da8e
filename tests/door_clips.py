"""Door scenarios as generated clips: real face photos entering, lingering, leaving, returning, two at
once, strangers (built on tests/clip_maker.py), and a library with known people in it.

People: obama (enrolled from obama2.jpg, shown from obama.jpg: another photo of the same person) in
the door's group "staff"; biden (enrolled, only in "default": known, not allowed); the astronaut
(never enrolled: a stranger).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from clip_maker import DATA, FacePath, render_frames

from daemon.library.index import TemplateIndex
from daemon.library.store import FaceStore, open_keys
from daemon.vision.embed import DESCRIPTOR_SIZE
from daemon.vision.engine import VisionEngine
from daemon.vision.image import encode_jpeg

OFF = -5000.0  # a centre far outside the frame: the person is not there
Key = tuple[float, float, float, float]  # (seconds, centre x, centre y, face width) in frame pixels


def keyed_path(photo: str, keys: Sequence[Key], duration: float) -> FacePath:
    """A face following keyframes in seconds (linear in between; OFF keys make it absent)."""
    times = np.array([k[0] for k in keys])

    def at(t: float, column: int) -> float:
        seconds = t * duration
        values = np.array([k[column] for k in keys])
        return float(np.interp(seconds, times, values))

    def centre(t: float) -> tuple[float, float]:
        seconds = t * duration
        i = min(max(int(np.searchsorted(times, seconds, side="right")) - 1, 0), len(keys) - 1)
        j = min(i + 1, len(keys) - 1)
        if keys[i][1] == OFF or keys[j][1] == OFF:
            return (OFF, OFF)
        return at(t, 1), at(t, 2)

    return FacePath(photo, centre, lambda t: at(t, 3))


def visits_paths(duration: float, return_at: float = 5.0, pair_at: float = 8.0) -> list[FacePath]:
    """obama: in 0–3.5 s, out, back at ``return_at`` for 2 s; then biden and the astronaut together
    from ``pair_at`` for 3 s. Faces 100–120 px wide in a 640×360 frame."""
    r, p = return_at, pair_at
    obama = keyed_path(
        "obama.jpg",
        [
            (0, 40, 180, 100),
            (1.0, 250, 180, 110),
            (2.5, 260, 180, 115),
            (3.5, 700, 180, 110),
            (3.51, OFF, 180, 110),
            (r - 0.01, OFF, 180, 110),
            (r, 600, 180, 110),
            (r + 0.8, 320, 180, 115),
            (r + 2.0, 330, 180, 115),
            (r + 2.01, OFF, 180, 115),
            (duration, OFF, 180, 115),
        ],
        duration,
    )
    biden = keyed_path(
        "biden.jpg",
        [
            (0, OFF, 0, 110),
            (p - 0.01, OFF, 0, 110),
            (p, 180, 170, 110),
            (p + 3.0, 200, 170, 115),
            (p + 3.01, OFF, 0, 115),
            (duration, OFF, 0, 115),
        ],
        duration,
    )
    astronaut = keyed_path(
        "astronaut.png",
        [
            (0, OFF, 0, 110),
            (p - 0.01, OFF, 0, 110),
            (p, 470, 170, 110),
            (p + 3.0, 450, 170, 115),
            (p + 3.01, OFF, 0, 115),
            (duration, OFF, 0, 115),
        ],
        duration,
    )
    return [obama, biden, astronaut]


def write_clip(
    path: Path, paths: list[FacePath], duration: float, fps: float = 10.0, size: tuple[int, int] = (640, 360)
) -> Path:
    frames = round(duration * fps) + 1
    images, _ = render_frames(size, frames, paths)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    try:
        for image in images:
            writer.write(image)
    finally:
        writer.release()
    return path


def enroll(store: FaceStore, engine: VisionEngine, photo: str, name: str, groups: list[str]) -> str:
    """Register the largest face of a test photo directly in the store; returns its faceToken."""
    bgr = cv2.imread(str(DATA / "faces" / photo), cv2.IMREAD_COLOR)
    rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    analysis = engine.analyze_largest(rgb)
    assert analysis is not None
    original = (DATA / "faces" / photo).read_bytes()
    rect = analysis.face.clipped_box(rgb.shape[1], rgb.shape[0])
    record = store.add_face(
        image_id=f"img-{name}",
        original=original,
        kind="jpeg",
        width=rgb.shape[1],
        height=rgb.shape[0],
        description="",
        name=name,
        gender="",
        rect=rect,
        crop_jpeg=encode_jpeg(analysis.chip),
        template=analysis.embedding,
        model_id=engine.embedder.model_id,
        quality=analysis.quality.quality,
        group_ids=groups,
    )
    return record.face_token


def make_library(database: Path, engine: VisionEngine) -> dict[str, str]:
    """obama in staff (+default), biden in default only; returns name → faceToken."""
    database.parent.mkdir(parents=True, exist_ok=True)
    store = FaceStore(database, open_keys(database, database.parent / "library.keys"))
    try:
        store.attach_index(TemplateIndex(DESCRIPTOR_SIZE), engine.embedder.model_id)
        store.create_group("staff", "Staff")
        return {
            "obama": enroll(store, engine, "obama2.jpg", "obama", ["default", "staff"]),
            "biden": enroll(store, engine, "biden.jpg", "biden", ["default"]),
        }
    finally:
        store.close()
