"""The shipped MiniFASNet liveness models against an independent numpy computation of the same weights.

tests/data/minifasnet holds the two original .pth files (Apache-2.0) and the three demo images.
scripts/minifasnet_numpy.py reads the .pth files without torch and runs the network in float64 numpy
(batch norm applied as such, not folded); the TFLite files were built from the same weights with
TensorFlow ops and batch norm folded. Tolerance: 1e-4 per softmax value (measured: below 1e-6).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import DATA, FACES, REPO, read_rgb

from daemon.config import PACKAGE_MODELS_DIR
from daemon.errors import ModelError
from daemon.vision.liveness import (
    CROP_SCALES,
    LIVE_CLASS,
    BoxCalibration,
    LivenessModel,
    context_of,
    crop_box,
    crop_for_model,
    load_liveness,
    model_box,
)
from daemon.vision.models import resolve_model
from daemon.vision.runtime import load_interpreter

SAMPLES = DATA / "minifasnet"
SOURCES = ["2.7_80x80_MiniFASNetV2.pth", "4_0_0_80x80_MiniFASNetV1SE.pth"]  # in CROP_SCALES order
TOLERANCE = 1e-4


def _load_reference():
    spec = importlib.util.spec_from_file_location(
        "minifasnet_numpy", REPO / "scripts" / "minifasnet_numpy.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ref = _load_reference()


@pytest.fixture(scope="module")
def weights() -> list[dict[str, np.ndarray]]:
    return [ref.read_pth(SAMPLES / name) for name in SOURCES]


@pytest.fixture(scope="module")
def model() -> LivenessModel:
    paths = [resolve_model(PACKAGE_MODELS_DIR, k) for k in ("liveness_v2", "liveness_v1se")]  # sha256
    return load_liveness(paths, num_threads=1)


@pytest.fixture(scope="module")
def crops(engine) -> list[tuple[str, np.ndarray, object]]:
    """(name, BGR image, largest face) of the samples and the live test photos."""
    result = []
    for path in [*sorted(SAMPLES.glob("*.jpg")), FACES / "obama.jpg", FACES / "astronaut.png"]:
        rgb = read_rgb(path)
        face = max(engine.find_faces(rgb), key=lambda f: f.area)
        result.append((path.name, np.ascontiguousarray(rgb[..., ::-1]), face))
    return result


def test_reads_the_pth_files_without_torch(weights):
    v2, v1se = weights
    assert len(v2) == 334 and len(v1se) == 370  # v1se: 3 squeeze-excitation modules more
    assert v2["conv1.conv.weight"].shape == (32, 3, 3, 3) and v2["conv1.conv.weight"].dtype == np.float32
    assert v2["prob.weight"].shape == (3, 128)
    assert v1se["conv_3.model.3.se_module.fc1.weight"].shape == (16, 64, 1, 1)
    assert not any(k.startswith("module.") for k in v2)
    assert all(np.isfinite(w).all() for w in v2.values())
    assert (v2["conv1.bn.running_var"] > 0).all()


def test_refuses_a_file_that_is_not_a_legacy_state_dict(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(Exception):  # noqa: B017  (pickle raises various errors on garbage)
        ref.read_pth(bad)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((SAMPLES / SOURCES[0]).read_bytes()[:-100])
    with pytest.raises(ValueError):
        ref.read_pth(truncated)


def test_tflite_matches_the_numpy_forward_pass(model, weights, crops):
    rng = np.random.default_rng(1)
    for index, scale in enumerate(CROP_SCALES):
        inputs = [crop_for_model(bgr, model_box(face), scale)[0] for _, bgr, face in crops]
        inputs.append(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8))
        for crop in inputs:
            ours = model.probabilities(crop, index)
            theirs = ref.forward(weights[index], crop)
            assert ours.shape == (3,) and abs(float(ours.sum()) - 1) < 1e-5
            assert np.abs(ours - theirs).max() <= TOLERANCE


def test_samples_attacks_score_below_the_live_sample(model, crops):
    scores = {name: model.score(bgr, face) for name, bgr, face in crops}
    assert all(0 <= s <= 100 for s in scores.values())
    assert scores["image_T1.jpg"] >= 90
    assert scores["image_F1.jpg"] < 40 and scores["image_F2.jpg"] < 40
    assert scores["obama.jpg"] >= 90


def test_score_is_the_mean_live_probability_of_both_models(model, crops):
    _, bgr, face = crops[0]
    box = model_box(face)
    expected = np.mean(
        [
            model.probabilities(crop_for_model(bgr, box, s)[0], i)[LIVE_CLASS]
            for i, s in enumerate(CROP_SCALES)
        ]
    )
    assert model.score(bgr, face) == pytest.approx(100 * expected)


def test_crop_box_follows_the_original():
    # Fits: centred, scale kept, inclusive int bounds.
    assert crop_box(1000, 1000, (400, 400, 100, 100), 2.7) == ((315, 315, 585, 585), 2.7)
    # Near the left/top border: shifted inside, not shrunk.
    (x1, y1, x2, y2), used = crop_box(1000, 1000, (0, 10, 100, 100), 4.0)
    assert (x1, y1) == (0, 0) and (x2, y2) == (400, 400) and used == 4.0
    # Near the right/bottom border.
    (x1, y1, x2, y2), _ = crop_box(1000, 800, (950, 750, 40, 40), 2.7)
    assert x2 == 999 and y2 == 799 and x2 - x1 == pytest.approx(108, abs=1)
    # Too big for the image: the scale is capped so the crop fits.
    (x1, y1, x2, y2), used = crop_box(480, 640, (140, 200, 200, 200), 4.0)
    assert used == pytest.approx(479 / 200) and (x1, x2) == (0, 479)
    with pytest.raises(ValueError):
        crop_box(100, 100, (10, 10, 0, 5), 2.7)


def test_model_box_maps_blazeface_to_wider_style(crops):
    _, _, face = crops[0]
    x, y, w, h = model_box(face, BoxCalibration(width=0.5, height=2.0, shift=-0.25))
    assert w == pytest.approx(face.width * 0.5) and h == pytest.approx(face.height * 2.0)
    assert x + w / 2 == pytest.approx((face.box[0] + face.box[2]) / 2)
    assert y + h / 2 == pytest.approx((face.box[1] + face.box[3]) / 2 - 0.25 * face.height)


def test_context_counts_face_sizes(crops):
    name, bgr, face = crops[2]
    assert name == "image_T1.jpg" and 2.0 < context_of(bgr, face) < 3.0  # 480×640, ~200 px face
    tight = bgr[int(face.box[1]) : int(face.box[3]), int(face.box[0]) : int(face.box[2])]
    assert context_of(tight, face) <= 1.01
    assert context_of(bgr, face) == pytest.approx(min(bgr.shape[1] / face.width, bgr.shape[0] / face.height))


def test_rejects_bad_crops_and_models(model):
    with pytest.raises(ValueError):
        model.probabilities(np.zeros((80, 80, 3), np.float32), 0)
    with pytest.raises(ValueError):
        model.probabilities(np.zeros((64, 64, 3), np.uint8), 0)
    detector = load_interpreter(resolve_model(PACKAGE_MODELS_DIR, "detector_short"))
    with pytest.raises(ModelError):
        LivenessModel([detector, detector])
    with pytest.raises(ModelError):
        LivenessModel([])


def test_converter_sources_are_the_documented_files():
    text = (REPO / "models" / "MODELS.md").read_text()
    for name in SOURCES:
        assert name in text
    for digest in (
        "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
        "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
    ):
        assert digest in text
    assert "Apache License" in (SAMPLES / "LICENSE").read_text()


def test_engine_holds_the_liveness_model_only_where_faces_are_recognised(engine, model_paths, crops):
    from daemon.vision.engine import VisionEngine

    _, bgr, face = crops[2]
    assert engine.liveness is not None and model_paths.liveness
    assert engine.liveness_score(bgr, face) == pytest.approx(engine.liveness.score(bgr, face))
    detection_only = VisionEngine(model_paths, 1, with_embedder=False)
    assert detection_only.liveness is None
    with pytest.raises(RuntimeError):
        detection_only.liveness_score(bgr, face)
