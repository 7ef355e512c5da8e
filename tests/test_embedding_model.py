"""The shipped embedding models against dlib itself.

tests/data/dlib_reference.npz holds, for every test face dlib finds, dlib's own aligned 150×150 chip
and dlib's descriptor of it (written by scripts/convert_embedding_model.py with dlib installed), so
these tests compare the TFLite conversion with the original network without needing dlib here.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from daemon.errors import ModelError
from daemon.vision.embed import SAME_PERSON_DISTANCE, Embedder, descriptor_distance
from daemon.vision.models import MODEL_FILES, resolve_model
from daemon.vision.runtime import load_interpreter

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
REFERENCE = REPO / "tests" / "data" / "dlib_reference.npz"
SAME_PERSON = ["obama.jpg", "obama2.jpg", "obama3.jpg", "32bit.png", "obama_partial_face.jpg"]
OTHERS = ["biden.jpg", "astronaut.png"]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module", params=["fp32", "int8"])
def embedder(request) -> Embedder:
    path = resolve_model(MODELS, f"embedding_{request.param}")  # checks the sha256
    return Embedder(load_interpreter(path, num_threads=1), request.param)


@pytest.fixture(scope="module")
def descriptors(embedder, reference) -> dict[str, np.ndarray]:
    names = [str(n) for n in reference["names"]]
    return dict(zip(names, (embedder.embed(chip) for chip in reference["chips"]), strict=True))


def test_reference_covers_the_test_faces(reference):
    names = set(reference["names"].tolist())
    assert set(SAME_PERSON + OTHERS) <= names
    n = len(names)
    assert reference["chips"].shape == (n, 150, 150, 3) and reference["chips"].dtype == np.uint8
    assert reference["descriptors"].shape == (n, 128)
    assert reference["landmarks"].shape == (n, 5, 2)
    assert reference["chip_affine"].shape == (n, 2, 3)


def test_chip_affine_maps_landmarks_into_the_chip(reference):
    # dlib aligns the five landmarks onto a fixed template, so they land at nearly the same chip
    # pixels in every photo; a wrong affine would scatter them.
    points = reference["landmarks"].astype(np.float64)
    affine = reference["chip_affine"]
    in_chip = np.einsum("nij,nkj->nki", affine[:, :, :2], points) + affine[:, None, :, 2]
    assert np.all((in_chip > 20) & (in_chip < 130))
    assert np.abs(in_chip - np.median(in_chip, axis=0)).max() < 12


def test_embed_returns_a_float32_descriptor(embedder, reference):
    result = embedder.embed(reference["chips"][0])
    assert result.shape == (128,) and result.dtype == np.float32
    assert 1.0 < np.linalg.norm(result) < 2.0  # dlib's descriptors are not normalised (≈ 1.4)
    # The input buffer is reused: a second call on another chip must not change the first result.
    again = result.copy()
    embedder.embed(reference["chips"][1])
    np.testing.assert_array_equal(result, again)


def test_model_id_names_model_and_variant(embedder):
    assert embedder.model_id in {"dlib_resnet_v1/fp32", "dlib_resnet_v1/int8"}


def test_matches_dlib(embedder, descriptors, reference):
    dlib = dict(zip(reference["names"].tolist(), reference["descriptors"], strict=True))
    for name, ours in descriptors.items():
        if embedder.model_id.endswith("/fp32"):
            assert np.abs(ours - dlib[name]).max() <= 1e-4, name
        else:
            cosine = ours @ dlib[name] / np.linalg.norm(ours) / np.linalg.norm(dlib[name])
            assert cosine >= 0.999, (name, cosine)


def test_same_person_within_threshold(descriptors):
    for a, b in itertools.combinations(SAME_PERSON, 2):
        assert descriptor_distance(descriptors[a], descriptors[b]) < SAME_PERSON_DISTANCE, (a, b)


def test_different_people_beyond_threshold(descriptors):
    for a in SAME_PERSON + OTHERS:
        for b in OTHERS:
            if a != b:
                assert descriptor_distance(descriptors[a], descriptors[b]) > SAME_PERSON_DISTANCE, (a, b)


def test_rejects_a_chip_of_the_wrong_shape_or_type(embedder, reference):
    chip = reference["chips"][0]
    with pytest.raises(ValueError):
        embedder.embed(chip[:149])
    with pytest.raises(ValueError):
        embedder.embed(chip.astype(np.float32))


def test_rejects_a_model_that_is_not_an_embedder():
    detector = load_interpreter(resolve_model(MODELS, "detector_short"))
    with pytest.raises(ModelError):
        Embedder(detector, "fp32")


def test_rejects_an_unknown_variant():
    interpreter = load_interpreter(resolve_model(MODELS, "embedding_int8"))
    with pytest.raises(ModelError):
        Embedder(interpreter, "fp16")


def test_tampered_model_is_refused(tmp_path):
    data = bytearray((MODELS / MODEL_FILES["embedding_int8"].filename).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / MODEL_FILES["embedding_int8"].filename).write_bytes(data)
    with pytest.raises(ModelError, match="sha256"):
        resolve_model(tmp_path, "embedding_int8")


def test_models_md_lists_every_file_and_hash():
    text = (MODELS / "MODELS.md").read_text()
    for model in MODEL_FILES.values():
        assert model.filename in text, model.filename
        assert re.search(rf"\b{model.sha256}\b", text), model.key


@pytest.fixture(scope="module")
def flip_embedders() -> dict[str, Embedder]:
    return {
        v: Embedder(
            load_interpreter(resolve_model(MODELS, f"embedding_{v}"), num_threads=1), v, flip_average=True
        )
        for v in ("fp32", "int8")
    }


def test_flip_average_is_the_mean_of_both_views(flip_embedders, reference):
    # Computed independently: the plain fp32 model on the chip and on its mirror image, averaged.
    plain = Embedder(load_interpreter(resolve_model(MODELS, "embedding_fp32"), num_threads=1), "fp32")
    for chip in reference["chips"][:3]:
        want = (plain.embed(chip).copy() + plain.embed(np.ascontiguousarray(chip[:, ::-1])).copy()) / 2
        np.testing.assert_allclose(flip_embedders["fp32"].embed(chip), want, atol=1e-6)


def test_flip_average_int8_matches_fp32(flip_embedders, reference):
    # The equivalence the int8 model keeps for single views holds for the flip-averaged descriptors.
    for name, chip in zip(reference["names"].tolist(), reference["chips"], strict=True):
        a, b = flip_embedders["fp32"].embed(chip), flip_embedders["int8"].embed(chip)
        cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        assert cosine >= 0.999, (name, cosine)
        assert descriptor_distance(a, b) < 0.03, name


def test_flip_average_keeps_people_apart(flip_embedders, reference):
    d = dict(
        zip(
            reference["names"].tolist(),
            (flip_embedders["int8"].embed(c) for c in reference["chips"]),
            strict=True,
        )
    )
    for a, b in itertools.combinations(SAME_PERSON, 2):
        assert descriptor_distance(d[a], d[b]) < SAME_PERSON_DISTANCE, (a, b)
    for a in SAME_PERSON:
        for b in OTHERS:
            assert descriptor_distance(d[a], d[b]) > SAME_PERSON_DISTANCE, (a, b)
