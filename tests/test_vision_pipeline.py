"""The whole vision core on real images: detect → refine → align → embed → quality, against dlib."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from conftest import DATA, FACES, read_rgb

from daemon.vision.align import CHIP_SIZE, similarity_transform, warp_chip
from daemon.vision.quality import QualityThresholds, failed_checks

SAME_PERSON = ["obama.jpg", "obama2.jpg", "obama3.jpg", "32bit.png"]


@pytest.fixture(scope="module")
def reference():
    return np.load(DATA / "dlib_reference.npz")


@pytest.fixture(scope="module")
def embeddings(engine):
    return {p.name: engine.analyze_largest(read_rgb(p)).embedding for p in sorted(FACES.iterdir())}


def cosine(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_blazeface_alignment_matches_dlib_on_every_test_face(reference, embeddings):
    """Our chip (BlazeFace keypoints, no dlib) gives nearly dlib's own descriptor of the same photo."""
    assert len(reference["names"]) == 8
    for name, descriptor in zip(reference["names"], reference["descriptors"], strict=True):
        assert cosine(embeddings[str(name)], descriptor) >= 0.98, name


def test_same_person_close_other_people_far(embeddings):
    for a, b in itertools.combinations(SAME_PERSON, 2):
        assert np.linalg.norm(embeddings[a] - embeddings[b]) < 0.5, (a, b)
    for name in SAME_PERSON:
        assert np.linalg.norm(embeddings[name] - embeddings["biden.jpg"]) > 0.7, name
        assert np.linalg.norm(embeddings[name] - embeddings["astronaut.png"]) > 0.7, name


def test_partial_faces_still_match(embeddings):
    for name in ("obama_partial_face.jpg", "obama_partial_face2.jpg"):
        assert np.linalg.norm(embeddings[name] - embeddings["obama.jpg"]) < 0.5, name


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, size=(5, 2))
    angle, scale, shift = np.deg2rad(17), 0.37, np.array([12.0, -40.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-7)


def test_shrinking_path_gives_the_same_chip_as_a_direct_warp():
    """Large faces are shrunk with INTER_AREA before the warp; geometry must not move."""
    image = read_rgb(FACES / "obama.jpg")
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    matrix = np.array([[0.5, 0.0, -180.0], [0.0, 0.5, -75.0]])  # scale 0.5: direct path
    direct = warp_chip(image, matrix)
    shrunk = warp_chip(big, matrix @ np.diag([1 / 3, 1 / 3, 1]))  # scale 1/6: shrinking path
    assert direct.shape == shrunk.shape == (CHIP_SIZE, CHIP_SIZE, 3)
    # Aliasing differs (that is the point of shrinking first); the geometry must not: compare smoothed.
    smooth_direct = cv2.GaussianBlur(direct, (0, 0), 2).astype(int)
    smooth_shrunk = cv2.GaussianBlur(shrunk, (0, 0), 2).astype(int)
    assert np.abs(smooth_direct - smooth_shrunk).mean() < 3
    shifted = cv2.GaussianBlur(warp_chip(image, matrix + np.array([[0, 0, 3], [0, 0, 0]])), (0, 0), 2).astype(
        int
    )
    assert np.abs(smooth_direct - shifted).mean() > np.abs(smooth_direct - smooth_shrunk).mean() * 1.5


def test_quality_of_clean_faces_passes_the_gate(engine):
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png"):
        quality = engine.analyze_largest(read_rgb(FACES / name)).quality
        assert failed_checks(quality, QualityThresholds()) == [], (name, quality)
        assert 0.5 < quality.quality <= 1.0


@pytest.mark.parametrize("name", ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png"])
def test_blurness_is_graded_sharp_below_sigma2_below_sigma4(engine, name):
    # Ordinary photos spread over a visible range instead of all reading 0, and a slight blur moves
    # the value: the order sharp < σ 2 px < σ 4 px holds for every test face (100–330 px faces).
    image = read_rgb(FACES / name)
    values = [
        engine.analyze_largest(image if s == 0 else cv2.GaussianBlur(image, (0, 0), s)).quality.blurness
        for s in (0, 2, 4)
    ]
    assert 0 < values[0] <= 40, values
    assert values[0] + 5 < values[1] < values[2], values


def test_blur_darkness_and_roll_are_measured(engine):
    image = read_rgb(FACES / "obama.jpg")
    sharp = engine.analyze_largest(image).quality
    blurred = engine.analyze_largest(cv2.GaussianBlur(image, (0, 0), 12)).quality
    assert blurred.blurness > sharp.blurness + 30
    assert "blur" in failed_checks(blurred, QualityThresholds())
    assert blurred.quality < sharp.quality
    dark = engine.analyze_largest((image * 0.12).astype(np.uint8)).quality
    assert "dark" in failed_checks(dark, QualityThresholds())
    h, w = image.shape[:2]
    rotated = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), -25, 1.0), (w, h))
    roll = engine.analyze_largest(rotated).quality.roll
    assert roll == pytest.approx(sharp.roll + 25, abs=5)


def test_yaw_changes_sign_with_a_mirrored_face(engine):
    image = read_rgb(FACES / "obama2.jpg")
    yaw = engine.analyze_largest(image).quality.yaw
    mirrored = engine.analyze_largest(np.ascontiguousarray(image[:, ::-1])).quality.yaw
    assert abs(yaw) > 5
    assert mirrored == pytest.approx(-yaw, abs=4)
