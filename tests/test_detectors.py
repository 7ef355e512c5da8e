"""Detector backends behind one interface, chosen by name in config through the registry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import FACES, NO_FACES, read_rgb

from daemon.config import load_config, with_overrides
from daemon.errors import ConfigError
from daemon.services.privacy import detect_settings
from daemon.services.video_blur import privacy_detector
from daemon.vision.boxes import box_iou
from daemon.vision.detectors.base import FaceDetector
from daemon.vision.detectors.registry import DETECTOR_BACKENDS, backend
from daemon.vision.detectors.yunet import decode_level, padded_size, six_keypoints
from daemon.vision.privacy_detect import DetectPass, detect_for_privacy, plan_passes
from daemon.vision.types import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE


class CountingEngine:
    """The real engine, recording which backend each model run used."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.models: list[str] = []

    def detect(self, image, model="short", min_score=None, roi=None):
        self.models.append(model)
        return self.engine.detect(image, model, min_score=min_score, roi=roi)


def test_the_registry_names_every_backend_and_refuses_others() -> None:
    assert {"blazeface_short", "blazeface_full", "yunet"} <= set(DETECTOR_BACKENDS)
    assert backend("full") is DETECTOR_BACKENDS["blazeface_full"]  # the engine's old short names
    with pytest.raises(ConfigError, match=r"unknown face detector 'centerface'.*yunet"):
        backend("centerface")


@pytest.mark.parametrize("name", sorted(DETECTOR_BACKENDS))
def test_every_backend_finds_the_test_face_with_its_keypoints(engine, name) -> None:
    detector = engine.detectors[name]
    assert isinstance(detector, FaceDetector)
    rgb = read_rgb(FACES / "obama.jpg")
    faces = detector.detect(rgb)
    assert len(faces) == 1
    (face,) = faces
    assert box_iou(face.box, max(engine.detect(rgb, "full"), key=lambda f: f.score).box) > 0.5
    kps = face.keypoints
    assert kps.shape == (6, 2)
    # MediaPipe's order for every backend: the subject's right eye is on the image's left.
    assert kps[RIGHT_EYE, 0] < kps[NOSE_TIP, 0] < kps[LEFT_EYE, 0]
    assert kps[RIGHT_EYE, 1] < kps[NOSE_TIP, 1] < kps[MOUTH, 1]
    x1, y1, x2, y2 = face.box
    assert np.all((kps[:4, 0] > x1) & (kps[:4, 0] < x2) & (kps[:4, 1] > y1) & (kps[:4, 1] < y2))


def test_a_region_is_searched_alone_and_reported_in_image_pixels(engine) -> None:
    rgb = read_rgb(FACES / "obama.jpg")
    yunet = engine.detectors["yunet"]
    (whole,) = yunet.detect(rgb)
    x1, y1, x2, y2 = (int(v) for v in whole.box)
    side = max(x2 - x1, y2 - y1)
    roi = (x1 - side // 2, y1 - side // 2, x2 + side // 2, y2 + side // 2)
    (inside,) = yunet.detect(rgb, roi=roi)
    assert box_iou(inside.box, whole.box) > 0.8
    empty_corner = (0, 0, 60, 60)
    assert yunet.detect(rgb, roi=empty_corner) == []


def test_the_zoomed_check_removes_a_texture_face(engine) -> None:
    """YuNet takes a part of the motorcycle photo for a face (~0.6–0.76). The default sure_score (0.6,
    tuned for recall on real photos) lets it through — the one false face of docs/BENCHMARKS.md — and
    stricter scores send it to the zoomed check, which removes it."""
    rgb = read_rgb(NO_FACES / "motorcycle_left.png")
    settings = detect_settings(load_config(None, environ={}).privacy)
    assert settings.detector == "yunet" and settings.verify
    assert len(detect_for_privacy(engine, rgb, settings)) == 1
    stricter = replace(settings, sure_score=0.8, verify_score=0.6)
    assert detect_for_privacy(engine, rgb, stricter) == []


def test_yunet_decoding_follows_the_model_layout() -> None:
    """One cell fires at column 2, row 1 of stride 8 in a 32×16 input (4 columns): its box and points."""
    assert padded_size(33, 16) == (64, 32)
    cols, cells = 4, 8
    cls, obj = np.zeros((cells, 1), np.float32), np.zeros((cells, 1), np.float32)
    bbox, kps = np.zeros((cells, 4), np.float32), np.zeros((cells, 10), np.float32)
    cell = 1 * cols + 2
    cls[cell], obj[cell] = 0.81, 1.0
    bbox[cell] = (0.5, 0.25, np.log(2.0), 0.0)  # centre (2.5, 1.25) cells, 16×8 px
    kps[cell, 0:2] = (0.0, 1.0)
    boxes, points, scores = decode_level(cls, obj, bbox, kps, 8, cols, 0.5)
    assert scores.tolist() == [pytest.approx(0.9)]  # sqrt(cls · obj)
    assert boxes[0].tolist() == pytest.approx([12.0, 6.0, 28.0, 14.0])
    assert points[0, 0].tolist() == pytest.approx([16.0, 16.0])
    assert decode_level(cls, obj, bbox, kps, 8, cols, 0.95)[2].size == 0
    six = six_keypoints(np.arange(10, dtype=np.float32).reshape(1, 5, 2), boxes)
    assert six[0, 3].tolist() == pytest.approx([7.0, 8.0])  # the mouth: mean of the two corners


def test_config_names_the_detector_of_each_use() -> None:
    config = load_config(None, environ={})
    uses = (config.privacy.detector, config.stream.detector, config.tasks.detector)
    names = [*config.detection.detectors, *uses]
    assert all(n in DETECTOR_BACKENDS for n in names)
    with pytest.raises(ConfigError, match=r"privacy\.detector: unknown detector 'nope'"):
        with_overrides(config, privacy={"detector": "nope"})
    with pytest.raises(ConfigError, match=r"detection\.detectors"):
        load_config(None, environ={"FACEGATE_DETECTION_DETECTORS": "[]"})


def test_a_backend_is_swapped_in_by_config(engine) -> None:
    """The same image through the stream's detection function, with the backend named in config."""
    rgb = read_rgb(FACES / "obama.jpg")
    config = load_config(None, environ={})
    for name in ("yunet", "blazeface_full", "blazeface_short"):
        counting = CountingEngine(engine)
        swapped = with_overrides(config, stream={"detector": name})
        faces = privacy_detector(counting, swapped, 0, swapped.stream.detector)(rgb)
        assert len(faces) == 1
        assert set(counting.models) == {name}
    settings = detect_settings(with_overrides(config, privacy={"detector": "blazeface_full"}).privacy)
    assert plan_passes(1920, 1080, settings)[0] == DetectPass("blazeface_full", None)
    assert len(plan_passes(1920, 1080, settings)) > 1  # BlazeFace needs tiles for small faces
    assert plan_passes(1920, 1080, replace(settings, detector="yunet")) == [DetectPass("yunet", None)]


def test_recognition_tries_the_configured_detectors_in_turn(engine, model_paths) -> None:
    from daemon.app import engine_from_config

    config = load_config(None, environ={})
    default = engine_from_config(config, model_paths, False)
    assert default.recognition_detectors == ("blazeface_short", "blazeface_full")
    only_yunet = engine_from_config(
        with_overrides(config, detection={"detectors": ["yunet"]}), model_paths, False
    )
    calls: list[str] = []
    original = only_yunet.detect

    def counted(image, model="short", min_score=None, roi=None):
        calls.append(model)
        return original(image, model, min_score, roi)

    only_yunet.detect = counted  # the instance's own detect, counted
    faces = only_yunet.find_faces(read_rgb(FACES / "obama.jpg"))
    assert len(faces) == 1 and calls == ["yunet"]
