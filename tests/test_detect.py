"""BlazeFace detection: anchors, decoding, NMS and the real models on the test images."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.errors import ModelError
from daemon.vision.anchors import ssd_anchor_centres
from daemon.vision.detect import (
    DETECTOR_KINDS,
    Detector,
    Letterbox,
    decode,
    letterbox,
    weighted_nms,
)
from daemon.vision.models import MODEL_FILES, resolve_model
from daemon.vision.runtime import load_interpreter
from daemon.vision.types import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
FACES_DIR = ROOT / "tests" / "data" / "faces"
NO_FACES_DIR = ROOT / "tests" / "data" / "no_faces"
KINDS = ("short", "full")

# Where the one face of each test image is: (centre x, centre y, box width) in pixels, read off the
# images (both models agree to within ~10% of the face width).
EXPECTED_FACES = {
    "obama.jpg": (488, 276, 278),
    "obama2.jpg": (326, 450, 323),
    "32bit.png": (326, 450, 323),
    "obama3.jpg": (778, 460, 330),
    "biden.jpg": (572, 398, 325),
    "astronaut.png": (225, 124, 100),
    "obama_partial_face.jpg": (73, 276, 277),
    "obama_partial_face2.jpg": (483, 276, 273),
}
PARTIAL = {"obama_partial_face.jpg", "obama_partial_face2.jpg"}
FACE_IMAGES = sorted(p.name for p in FACES_DIR.iterdir())
NO_FACE_IMAGES = sorted(p.name for p in NO_FACES_DIR.iterdir())
# The thresholds must clear every test image by this much (see the scores in the module's report).
SCORE_MARGIN = 0.1


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    return {
        kind: Detector(load_interpreter(resolve_model(MODELS_DIR, spec.model_key), 1), kind)
        for kind, spec in DETECTOR_KINDS.items()
    }


@pytest.fixture(scope="module")
def obama() -> np.ndarray:
    return load_rgb(FACES_DIR / "obama.jpg")


def box_array(face) -> np.ndarray:
    return np.asarray(face.box, dtype=np.float64)


# --- anchors and the kinds table -------------------------------------------------------------------


def test_anchor_counts_and_layout() -> None:
    short = ssd_anchor_centres(DETECTOR_KINDS["short"].anchors)
    full = ssd_anchor_centres(DETECTOR_KINDS["full"].anchors)
    assert short.shape == (896, 2)
    assert full.shape == (2304, 2)
    assert np.all((short > 0) & (short < 1)) and np.all((full > 0) & (full < 1))
    # short: a 16×16 map with 2 anchors a cell, then an 8×8 map with 6 (three stride-16 layers).
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])  # x varies fastest
    np.testing.assert_allclose(short[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    # full: a 48×48 map with one anchor a cell.
    np.testing.assert_allclose(full[0], [0.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(full[1], [1.5 / 48, 0.5 / 48])
    np.testing.assert_allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_kinds_table(detectors: dict[str, Detector]) -> None:
    assert set(DETECTOR_KINDS) == set(KINDS)
    for kind, spec in DETECTOR_KINDS.items():
        assert spec.model_key in MODEL_FILES
        assert detectors[kind].input_size == spec.input_size
        assert detectors[kind].name == spec.name
    assert detectors["short"].input_size == 128 and detectors["full"].input_size == 192
    assert detectors["short"].name == "blazeface_short_range"
    assert detectors["full"].name == "blazeface_full_range"


def test_wrong_model_or_kind_is_refused() -> None:
    interpreter = load_interpreter(resolve_model(MODELS_DIR, "detector_short"), 1)
    with pytest.raises(ModelError):
        Detector(interpreter, "full")
    with pytest.raises(ValueError):
        Detector(interpreter, "medium")  # type: ignore[arg-type]


# --- decoding and NMS on synthetic outputs ----------------------------------------------------------


def test_decode_places_box_and_keypoints_relative_to_the_anchor() -> None:
    anchors_px = ssd_anchor_centres(DETECTOR_KINDS["short"].anchors) * 128
    regressors = np.zeros((896, 16), np.float32)
    logits = np.full((896, 1), -10.0, np.float32)
    index = 600  # an anchor of the 8×8 map
    ax, ay = anchors_px[index]
    regressors[index, :4] = [2.0, -1.0, 20.0, 10.0]
    regressors[index, 4:] = np.arange(12, dtype=np.float32)
    logits[index] = 3.0
    boxes, keypoints, scores = decode(regressors, logits, anchors_px, 0.5)
    np.testing.assert_allclose(boxes, [[ax + 2 - 10, ay - 1 - 5, ax + 2 + 10, ay - 1 + 5]], atol=1e-4)
    expected_kps = np.arange(12, dtype=np.float32).reshape(6, 2) + np.array([ax, ay])
    np.testing.assert_allclose(keypoints[0], expected_kps, atol=1e-4)
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-3.0))], rtol=1e-6)
    # The threshold is inclusive and exact: a score just above/below it flips the result.
    assert len(decode(regressors, logits, anchors_px, float(scores[0]))[2]) == 1
    assert len(decode(regressors, logits, anchors_px, float(scores[0]) + 1e-6)[2]) == 0


def test_extreme_logits_raise_no_runtime_warning(detectors: dict[str, Detector]) -> None:
    detector = detectors["short"]
    rng = np.random.default_rng(0)
    regressors = rng.normal(0, 50, (896, 16)).astype(np.float32)
    logits = np.where(np.arange(896) % 2 == 0, 1e30, -1e30).astype(np.float32).reshape(896, 1)
    logits[:10] = np.finfo(np.float32).max
    logits[10:20] = -np.finfo(np.float32).max
    placement = Letterbox(0.1, 0.1, 0, 14, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        faces = detector.faces_from_outputs(regressors, logits, 0.5, placement)
        none = detector.faces_from_outputs(regressors, -np.abs(logits), 0.01, placement)
        everything = detector.faces_from_outputs(regressors, logits, 0.0, placement)
    assert faces and all(0.0 <= f.score <= 1.0 for f in faces)
    assert all(np.isfinite(f.box).all() and np.isfinite(f.keypoints).all() for f in faces)
    assert none == []
    assert len(everything) >= len(faces)


def test_weighted_nms_averages_overlapping_boxes_by_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [1, 1, 11, 11]], np.float32)
    keypoints = np.stack([np.full((6, 2), v, np.float32) for v in (0.0, 50.0, 1.0)])
    scores = np.array([0.6, 0.7, 0.9], np.float32)
    out_boxes, out_kps, out_scores = weighted_nms(boxes, keypoints, scores)
    np.testing.assert_allclose(out_scores, [0.9, 0.7])
    mean = (0.9 * 1 + 0.6 * 0) / 1.5
    np.testing.assert_allclose(out_boxes[0], [mean, mean, 10 + mean, 10 + mean], rtol=1e-5)
    np.testing.assert_allclose(out_kps[0], np.full((6, 2), mean), rtol=1e-5)
    np.testing.assert_allclose(out_boxes[1], [100, 100, 110, 110])
    # Below the IoU threshold the boxes stay apart.
    far = np.array([[0, 0, 10, 10], [7, 0, 17, 10]], np.float32)  # IoU 3/17
    assert len(weighted_nms(far, keypoints[:2], scores[:2])[2]) == 2


def test_letterbox_keeps_aspect_and_pads_black() -> None:
    image = np.full((100, 400, 3), 255, np.uint8)
    tensor, (sx, sy, pad_x, pad_y) = letterbox(image, 128)
    assert tensor.shape == (1, 128, 128, 3) and tensor.dtype == np.float32
    assert (sx, sy, pad_x, pad_y) == (128 / 400, 32 / 100, 0, 48)
    assert np.all(tensor[0, :48] == -1.0) and np.all(tensor[0, 80:] == -1.0)
    np.testing.assert_allclose(tensor[0, 48:80], 1.0)


# --- the real models on the test images -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", FACE_IMAGES)
def test_one_face_per_face_image(detectors: dict[str, Detector], kind: str, name: str) -> None:
    image = load_rgb(FACES_DIR / name)
    height, width = image.shape[:2]
    faces = detectors[kind].detect(image)
    assert len(faces) == 1, [f.score for f in faces]
    face = faces[0]
    assert face.score >= detectors[kind].default_min_score + SCORE_MARGIN

    cx, cy, expected_width = EXPECTED_FACES[name]
    x1, y1, x2, y2 = face.box
    assert abs((x1 + x2) / 2 - cx) < 0.15 * expected_width
    assert abs((y1 + y2) / 2 - cy) < 0.15 * expected_width
    assert 0.8 * expected_width < face.width < 1.2 * expected_width
    assert 0.8 < face.height / face.width < 1.25  # BlazeFace boxes are about square
    slack = 0.02 * max(width, height)
    inside = x1 > -slack and y1 > -slack and x2 < width + slack and y2 < height + slack
    if name in PARTIAL:
        assert x1 < 0 or x2 > width  # the face is cut by the left or right border
    else:
        assert inside

    kps = face.keypoints
    assert kps.shape == (6, 2) and kps.dtype == np.float32
    right_eye, left_eye, nose, mouth = kps[RIGHT_EYE], kps[LEFT_EYE], kps[NOSE_TIP], kps[MOUTH]
    assert right_eye[0] < nose[0] < left_eye[0]  # frontal faces, not mirrored
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    eye_distance = float(np.hypot(*(left_eye - right_eye)))
    assert 0.25 * face.width < eye_distance < 0.6 * face.width
    for x, y in (right_eye, left_eye, nose, mouth):
        assert x1 <= x <= x2 and y1 <= y <= y2


def test_both_models_agree_on_the_face(detectors: dict[str, Detector], obama: np.ndarray) -> None:
    short, full = (detectors[k].detect(obama)[0] for k in KINDS)
    a, b = box_array(short), box_array(full)
    inter = np.prod(np.maximum(0, np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2])))
    union = short.area + full.area - inter
    assert inter / union > 0.7


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", NO_FACE_IMAGES)
def test_no_face_in_no_face_images(detectors: dict[str, Detector], kind: str, name: str) -> None:
    detector = detectors[kind]
    image = load_rgb(NO_FACES_DIR / name)
    assert detector.detect(image) == []
    near_misses = detector.detect(image, min_score=detector.default_min_score - SCORE_MARGIN)
    assert near_misses == [], [f.score for f in near_misses]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_images_have_no_face(detectors: dict[str, Detector], kind: str, value: int) -> None:
    for shape in ((480, 640, 3), (1, 1, 3), (5, 300, 3)):
        assert detectors[kind].detect(np.full(shape, value, np.uint8)) == []


def test_results_are_sorted_by_score(detectors: dict[str, Detector]) -> None:
    faces = detectors["full"].detect(load_rgb(FACES_DIR / "obama2.jpg"), min_score=0.05)
    assert len(faces) > 1
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_rejects_non_rgb_input(detectors: dict[str, Detector]) -> None:
    with pytest.raises(ValueError):
        detectors["short"].detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError):
        detectors["short"].detect(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError):
        detectors["short"].detect(np.zeros((64, 64, 3), np.float32))


# --- coordinates: letterbox, scaling and roi map back to the original image -------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_padding_to_square_gives_the_same_box(
    detectors: dict[str, Detector], obama: np.ndarray, kind: str
) -> None:
    # Black padding to a square is what the letterbox does itself, so the model sees the same input.
    detector = detectors[kind]
    height, width = obama.shape[:2]
    left = (height - width) // 2
    square = cv2.copyMakeBorder(obama, 0, 0, left, height - width - left, cv2.BORDER_CONSTANT, value=0)
    (base,) = detector.detect(obama)
    (padded,) = detector.detect(square)
    np.testing.assert_allclose(box_array(padded) - [left, 0, left, 0], box_array(base), atol=3)
    np.testing.assert_allclose(padded.keypoints - [left, 0], base.keypoints, atol=3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("factor", [2.0, 2 / 3])
def test_scaled_image_gives_the_scaled_box(
    detectors: dict[str, Detector], obama: np.ndarray, kind: str, factor: float
) -> None:
    detector = detectors[kind]
    height, width = obama.shape[:2]
    size = (round(width * factor), round(height * factor))
    scaled = cv2.resize(obama, size, interpolation=cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA)
    (base,) = detector.detect(obama)
    (other,) = detector.detect(scaled)
    np.testing.assert_allclose(box_array(other) / factor, box_array(base), atol=4)


@pytest.mark.parametrize("kind", KINDS)
def test_off_centre_padding_moves_the_box_by_the_padding(
    detectors: dict[str, Detector], obama: np.ndarray, kind: str
) -> None:
    # The face lands elsewhere in the model input, so allow for the model's own jitter.
    detector = detectors[kind]
    left, top = 300, 200
    padded = cv2.copyMakeBorder(obama, top, 50, left, 120, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    (base,) = detector.detect(obama)
    (moved,) = detector.detect(padded)
    shift = box_array(moved) - [left, top, left, top] - box_array(base)
    assert np.abs(shift).max() < 0.12 * base.width


@pytest.mark.parametrize("kind", KINDS)
def test_roi_on_an_embedded_image_matches_the_image_alone(
    detectors: dict[str, Detector], obama: np.ndarray, kind: str
) -> None:
    detector = detectors[kind]
    height, width = obama.shape[:2]
    rng = np.random.default_rng(1)
    canvas = rng.integers(0, 256, (height + 400, width + 600, 3), dtype=np.uint8)
    canvas[150 : 150 + height, 250 : 250 + width] = obama
    (base,) = detector.detect(obama)
    (in_roi,) = detector.detect(canvas, roi=(250, 150, 250 + width, 150 + height))
    np.testing.assert_allclose(box_array(in_roi), box_array(base) + np.array([250, 150, 250, 150]), atol=0.01)
    np.testing.assert_allclose(in_roi.keypoints, base.keypoints + np.array([250, 150]), atol=0.01)
    assert in_roi.score == pytest.approx(base.score)


@pytest.mark.parametrize("kind", KINDS)
def test_roi_around_the_face_gives_the_same_box(
    detectors: dict[str, Detector], obama: np.ndarray, kind: str
) -> None:
    detector = detectors[kind]
    (base,) = detector.detect(obama)
    x1, y1, x2, y2 = base.box
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, base.width
    roi = (int(cx - half), int(cy - half), int(cx + half), int(cy + half))  # may poke out: clipped
    (refined,) = detector.detect(obama, roi=roi)
    assert np.abs(box_array(refined) - box_array(base)).max() < 0.08 * base.width


def test_roi_outside_the_image_is_refused(detectors: dict[str, Detector], obama: np.ndarray) -> None:
    with pytest.raises(ValueError):
        detectors["short"].detect(obama, roi=(5000, 0, 6000, 100))
    with pytest.raises(ValueError):
        detectors["short"].detect(obama, roi=(100, 100, 100, 200))
