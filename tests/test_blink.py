"""Temporal liveness (daemon/vision/blink.py) on clips of real face photos (tests/blink_clips.py).

The clips run through the real BlazeFace detector, face mesh and iris model, as at the door. The
blink clips are checked first: the edited photos must read as closed eyes to the iris model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from blink_clips import Motion, blink_schedule, close_eyes, load_photo, rigid_frames

from daemon.config import BlinkConfig, CheckinConfig
from daemon.services.door_liveness import blink_settings
from daemon.vision.blink import BlinkDetector, BlinkLiveness, BlinkSettings
from daemon.vision.detect import Detector
from daemon.vision.eyes import EyeModel, EyeOpenness
from daemon.vision.face_mesh import FaceMesh
from daemon.vision.models import resolve_model
from daemon.vision.runtime import load_interpreter
from daemon.vision.types import Face

MODELS = Path(__file__).resolve().parent.parent / "models"
SETTINGS = blink_settings(BlinkConfig(), CheckinConfig())
FPS = 25.0
# Photos whose edited eyes the iris model reads as closed (checked by test_edited_eyes_read_closed).
BLINK_PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "astronaut.png")


@pytest.fixture(scope="module")
def models() -> tuple[Detector, FaceMesh, EyeModel]:
    return (
        Detector(load_interpreter(resolve_model(MODELS, "detector_short")), "short"),
        FaceMesh(load_interpreter(resolve_model(MODELS, "face_mesh"))),
        EyeModel(load_interpreter(resolve_model(MODELS, "iris"))),
    )


def largest(detector: Detector, bgr: np.ndarray) -> Face | None:
    faces = detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return max(faces, key=lambda f: f.area) if faces else None


def openness(models: tuple[Detector, FaceMesh, EyeModel], bgr: np.ndarray) -> EyeOpenness:
    detector, mesh, eyes = models
    face = largest(detector, bgr)
    assert face is not None
    return eyes.openness(bgr, mesh.mesh(bgr, face).points)


def edited(models: tuple[Detector, FaceMesh, EyeModel], photo: str) -> tuple[np.ndarray, Face, dict]:
    """The photo, its face, and the half-closed / shut versions."""
    detector, mesh, _ = models
    image = load_photo(photo)
    face = largest(detector, image)
    assert face is not None
    return image, face, {c: close_eyes(image, mesh, face, c) for c in (0.5, 1.0)}


def run_clip(models, frames, passive: float | None = 90.0, drop: frozenset[int] = frozenset(),
             require_blink: bool = True, settings: BlinkSettings = SETTINGS) -> tuple[BlinkLiveness, list]:
    """Feed a clip to a fresh BlinkLiveness as the door would; the verdict after every frame."""
    detector, mesh, eyes = models
    check = BlinkLiveness(mesh, eyes, settings, require_blink=require_blink)
    verdicts = []
    for k, frame in enumerate(frames):
        t = 100.0 + k / FPS  # any clock: only differences count
        face = None if k in drop else largest(detector, frame)
        if face is not None:
            check.observe(t, frame, face, passive)
        verdicts.append(check.verdict(t))
    return check, verdicts


@pytest.mark.parametrize("photo", BLINK_PHOTOS)
def test_edited_eyes_read_closed(models, photo: str) -> None:
    image, _, versions = edited(models, photo)
    before = openness(models, image)
    # The same photo through a different JPEG round trip reads the same: the drop is not noise.
    _ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    again = openness(models, cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    shut = openness(models, versions[1.0])
    half = openness(models, versions[0.5])
    for eye in ("right", "left"):
        open_ear, shut_ear = getattr(before, eye), getattr(shut, eye)
        assert 0.15 < open_ear < 0.5
        assert abs(getattr(again, eye) - open_ear) < 0.1 * open_ear
        assert shut_ear < 0.65 * open_ear, (eye, open_ear, shut_ear)
    assert shut.mean < half.mean < before.mean


@pytest.mark.parametrize(
    ("photo", "motion", "noise", "quality"),
    [
        ("obama.jpg", Motion(), 4.0, 70),
        ("biden.jpg", Motion(dx=100, dy=40, scale=0.3, roll=12, periods=2), 4.0, 70),
        ("astronaut.png", Motion(dx=0, dy=0, scale=0, roll=0), 4.0, 70),  # a photo held still
        ("obama3.jpg", Motion(dx=30, dy=10, scale=0.1, roll=4, periods=3), 4.0, 70),
        ("obama2.jpg", Motion(dx=80, dy=30, scale=0.25, roll=10, periods=3), 10.0, 35),  # noisy, blocky
    ],
)
def test_moving_photo_is_never_live(models, photo: str, motion: Motion, noise: float, quality: int) -> None:
    image, face, _ = edited(models, photo)
    frames = list(rigid_frames(image, face.box, 90, motion=motion, noise=noise, jpeg_quality=quality, seed=7))
    # A passive model fooled by the photo (score 90) must not make it live: no blink, no entry.
    check, verdicts = run_clip(models, frames, passive=90.0)
    assert all(v.state != "live" for v in verdicts)
    assert check.blinks == []
    assert verdicts[-1].state == "spoof"
    assert verdicts[-1].reason == "no blink within 3.0 s"
    assert verdicts[0].state == "pending"


@pytest.mark.parametrize("photo", ["obama.jpg", "astronaut.png"])
def test_blink_clip_is_live(models, photo: str) -> None:
    image, face, versions = edited(models, photo)
    schedule = blink_schedule(30, 3, versions[0.5], versions[1.0])  # 5 frames = 200 ms, 120 ms shut
    frames = list(rigid_frames(image, face.box, 75, closed=schedule, seed=3))
    check, verdicts = run_clip(models, frames, passive=80.0, drop=frozenset({10, 33}))
    states = [v.state for v in verdicts]
    live_from = states.index("live")
    assert all(s == "pending" for s in states[:live_from])
    assert 33 <= live_from <= 40  # decided when the eyes reopen, not before the blink
    assert all(s == "live" for s in states[live_from:])
    assert verdicts[-1].score == pytest.approx(80.0)
    assert "blink at" in verdicts[-1].reason
    assert len(check.blinks) == 1


def test_blink_with_low_passive_score_is_spoof(models) -> None:
    image, face, versions = edited(models, "obama2.jpg")
    schedule = blink_schedule(20, 3, versions[0.5], versions[1.0])
    frames = list(rigid_frames(image, face.box, 80, closed=schedule, seed=5))
    check, verdicts = run_clip(models, frames, passive=12.0)
    assert len(check.blinks) == 1
    assert all(v.state != "live" for v in verdicts)
    assert verdicts[-1].state == "spoof"
    assert verdicts[-1].reason == f"passive score 12 < {SETTINGS.passive_min_score:.0f}"


def test_passive_policy_needs_no_blink_but_a_score(models) -> None:
    image, face, _ = edited(models, "obama.jpg")
    frames = list(rigid_frames(image, face.box, 10, seed=1))
    _, verdicts = run_clip(models, frames, passive=75.0, require_blink=False)
    assert [v.state for v in verdicts[:2]] == ["pending", "pending"]  # 3 scores needed
    assert verdicts[2].state == "live"
    short = replace(SETTINGS, time_limit=0.2)
    _, verdicts = run_clip(models, frames, passive=None, require_blink=False, settings=short)
    assert verdicts[-1].state == "spoof"
    assert verdicts[-1].reason == "no passive score within 0.2 s"


def test_no_face_in_mesh_gives_no_reading_and_says_so(models) -> None:
    """A box on a brick wall: BlazeFace-shaped input without a face; the mesh sees none."""
    _, mesh, eyes = models
    wall = cv2.imread(str(MODELS.parent / "tests/data/no_faces/brick.png"), cv2.IMREAD_COLOR)
    wall = cv2.resize(wall, (640, 480))
    keypoints = np.array([[280, 200], [360, 200], [320, 240], [320, 280], [240, 210], [400, 210]], np.float32)
    fake = Face(box=(240.0, 140.0, 400.0, 300.0), score=0.9, keypoints=keypoints)
    check = BlinkLiveness(mesh, eyes, replace(SETTINGS, time_limit=0.5))
    for k in range(15):
        check.observe(k / FPS, wall, fake, 90.0)
    verdict = check.verdict(14 / FPS)
    assert verdict.state == "spoof"
    assert verdict.reason == "no eye landmarks within 0.5 s"


# BlinkDetector alone, on eye readings (no model): the rules of the sequence.


def feed(readings: list[tuple[float, float, float]]) -> BlinkDetector:
    detector = BlinkDetector(SETTINGS)
    for t, right, left in readings:
        detector.add(t, EyeOpenness(right, left))
    return detector


def open_run(t0: float, n: int, level: float = 0.3) -> list[tuple[float, float, float]]:
    return [(t0 + k * 0.04, level, level) for k in range(n)]


def test_detector_counts_a_blink_across_a_missed_frame() -> None:
    readings = [*open_run(0.0, 10), (0.44, 0.1, 0.12), *open_run(0.52, 5)]  # 0.40 and 0.48 missing
    assert feed(readings).blinks == [0.52]


def test_detector_ignores_noise_one_eye_and_long_closures() -> None:
    rng = np.random.default_rng(0)
    noisy = [(k * 0.04, 0.3 + rng.normal(0, 0.02), 0.3 + rng.normal(0, 0.02)) for k in range(200)]
    assert feed(noisy).blinks == []
    wink = [*open_run(0.0, 10), (0.4, 0.1, 0.3), (0.44, 0.1, 0.3), *open_run(0.48, 5)]
    assert feed(wink).blinks == []
    long_closed = open_run(0.0, 10) + [(0.4 + k * 0.04, 0.1, 0.1) for k in range(20)] + open_run(1.2, 5)
    assert feed(long_closed).blinks == []
    closed_from_start = [(k * 0.04, 0.1, 0.1) for k in range(5)] + open_run(0.2, 10)
    assert feed(closed_from_start).blinks == []


def test_blink_after_the_time_limit_is_denied(models) -> None:
    image, face, versions = edited(models, "obama.jpg")
    schedule = blink_schedule(60, 3, versions[0.5], versions[1.0])  # the blink ends at 2.56 s
    frames = list(rigid_frames(image, face.box, 75, closed=schedule, seed=3))
    _, verdicts = run_clip(models, frames, passive=80.0, settings=replace(SETTINGS, time_limit=2.0))
    states = [v.state for v in verdicts]
    assert states[:50] == ["pending"] * 50  # frame 50 is t = 2.0 s
    assert states[50:] == ["spoof"] * 25
    assert verdicts[-1].reason == "no blink within 2.0 s"


@pytest.mark.parametrize("angle", [0.0, 25.0, -25.0])
def test_mesh_lands_on_the_face(models, angle: float) -> None:
    """The mesh's eye corners lie around BlazeFace's eye keypoints, also for a rolled face."""
    detector, mesh, _ = models
    image = load_photo("biden.jpg")
    upright = largest(detector, image)
    assert upright is not None
    h, w = image.shape[:2]
    centre = ((upright.box[0] + upright.box[2]) / 2, (upright.box[1] + upright.box[3]) / 2)
    rotation = cv2.getRotationMatrix2D(centre, angle, 1.0)  # about the face: it stays in the frame
    image = cv2.warpAffine(image, rotation, (w, h), borderMode=cv2.BORDER_REPLICATE)
    face = largest(detector, image)
    assert face is not None
    result = mesh.mesh(image, face)
    assert result.presence > 0.9
    right = (result.points[33, :2] + result.points[133, :2]) / 2
    left = (result.points[362, :2] + result.points[263, :2]) / 2
    tolerance = 0.08 * face.width
    assert np.linalg.norm(right - face.keypoints[0]) < tolerance
    assert np.linalg.norm(left - face.keypoints[1]) < tolerance
    # Mesh points map back into the box, not into the crop's corner.
    x1, y1, x2, y2 = face.box
    inside = (result.points[:, 0] > x1 - 0.2 * face.width) & (result.points[:, 0] < x2 + 0.2 * face.width)
    inside &= (result.points[:, 1] > y1 - 0.3 * face.height) & (result.points[:, 1] < y2 + 0.3 * face.height)
    assert inside.all()
