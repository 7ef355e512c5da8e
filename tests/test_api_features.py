"""The feature-vector API (FEATURE_API.md) through a real server with the real models."""

from __future__ import annotations

import json
import math

import aiohttp
import cv2
import numpy as np
import pytest
from conftest import AUTH, FACES, NO_FACES, read_rgb

from daemon.config import with_overrides
from daemon.services.scores import ScoreMapping
from daemon.vision.image import encode_jpeg

MODEL = "dlib_resnet_v1/int8"


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


def image_form(data: bytes, filename: str = "face.jpg", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type="application/octet-stream")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def extract(client, name: str) -> dict:
    response = await client.post(
        "/api/extract_feature", data=image_form((FACES / name).read_bytes(), name), headers=AUTH
    )
    body = await response.json()
    assert response.status == 200, body
    return body


async def compare(client, payload, raw: bool = False):
    kwargs = {"data": payload} if raw else {"json": payload}
    response = await client.post("/api/compare_features", headers=AUTH, **kwargs)
    return response.status, await response.json()


@pytest.fixture
async def obama(client):
    return await extract(client, "obama.jpg")


async def test_extract_response_shape(client, obama):
    assert obama["success"] is True
    assert obama["feature_dim"] == 128 == len(obama["feature"])
    assert all(isinstance(x, float) and math.isfinite(x) for x in obama["feature"])
    assert obama["model"] == MODEL
    assert obama["quality_passed"] is True
    assert obama["quality_failed"] == []
    assert isinstance(obama["processing_time"], float) and 0 <= obama["processing_time"] < 60
    rect = obama["rect"]
    assert 0 <= rect["left"] < rect["right"] <= 910 and 0 <= rect["top"] < rect["bottom"] <= 1137
    # dlib descriptors are not normalised: their length is about 1.4, never 1 or 0.
    assert 0.5 < float(np.linalg.norm(obama["feature"])) < 3


async def test_same_person_and_different_person(client, config, obama):
    obama2 = await extract(client, "obama2.jpg")
    biden = await extract(client, "biden.jpg")
    status, same = await compare(client, {"feature1": obama["feature"], "feature2": obama2["feature"]})
    assert status == 200, same
    assert same["success"] is True and same["is_same_person"] is True
    assert same["threshold"] == 0.7 and same["similarity"] >= 0.7 and same["model"] == MODEL
    status, other = await compare(
        client, {"feature1": obama["feature"], "feature2": biden["feature"], "model": MODEL}
    )
    assert status == 200, other
    assert other["is_same_person"] is False and other["similarity"] < 0.7
    # similarity is the device API's calibrated score / 100 of the raw descriptor distance.
    distance = float(np.linalg.norm(np.subtract(obama["feature"], biden["feature"])))
    expected = ScoreMapping(config.scores.anchors).score(distance) / 100
    assert other["similarity"] == pytest.approx(expected, abs=1e-4)
    assert other["distance"] == pytest.approx(distance, abs=1e-4)


async def test_a_feature_compared_with_itself_is_a_perfect_match(client, obama):
    status, body = await compare(client, {"feature1": obama["feature"], "feature2": obama["feature"]})
    assert status == 200 and body["similarity"] == 1.0 and body["distance"] == 0.0


async def test_the_threshold_comes_from_config(make_client, config):
    client = await make_client(with_overrides(config, features={"threshold": 0.99}))
    a, b = await extract(client, "obama.jpg"), await extract(client, "obama2.jpg")
    status, body = await compare(client, {"feature1": a["feature"], "feature2": b["feature"]})
    assert status == 200 and body["threshold"] == 0.99
    assert body["is_same_person"] is False  # the same pair as above, now below the stricter threshold


async def test_compare_image_feature(client, obama):
    feature = json.dumps(obama["feature"])
    response = await client.post(
        "/api/compare_image_feature",
        data=image_form((FACES / "obama2.jpg").read_bytes(), feature=feature, model=MODEL),
        headers=AUTH,
    )
    body = await response.json()
    assert response.status == 200, body
    assert body["success"] is True and body["is_same_person"] is True and body["threshold"] == 0.7
    assert 0.7 <= body["similarity"] <= 1 and isinstance(body["processing_time"], float)

    response = await client.post(
        "/api/compare_image_feature",
        data=image_form((FACES / "biden.jpg").read_bytes(), feature=feature),
        headers=AUTH,
    )
    body = await response.json()
    assert response.status == 200 and body["is_same_person"] is False


async def test_a_blurry_face_is_extracted_but_fails_the_quality_gate(client):
    blurred = cv2.GaussianBlur(read_rgb(FACES / "obama.jpg"), (0, 0), 12)
    response = await client.post("/api/extract_feature", data=image_form(encode_jpeg(blurred)), headers=AUTH)
    body = await response.json()
    assert response.status == 200, body
    assert body["quality_passed"] is False and "blur" in body["quality_failed"]
    assert "quality gate" in body["message"] and len(body["feature"]) == 128


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"feature1": "F", "feature2": [0.1] * 127}, "feature2 has 127 values"),
        ({"feature1": "F", "feature2": [0.1] * 1024}, "feature2 has 1024 values"),
        ({"feature1": "F", "feature2": []}, "feature2 is empty"),
        ({"feature1": "F", "feature2": ["0.1"] * 128}, "feature2[0] is not a number"),
        ({"feature1": "F", "feature2": [True] * 128}, "feature2[0] is not a number"),
        ({"feature1": "F", "feature2": [[0.1]] * 128}, "feature2[0] is not a number"),
        ({"feature1": "F", "feature2": [0.1] * 127 + [None]}, "feature2[127] is not a number"),
        ({"feature1": "F", "feature2": [0.1] * 127 + [1e39]}, "beyond float32 range"),
        ({"feature1": "F", "feature2": [0.1] * 127 + [10**400]}, "feature2[127] is not a finite"),
        ({"feature1": "F", "feature2": {"a": 1}}, "feature2 must be a JSON array"),
        ({"feature1": "F"}, "feature2 must be a JSON array"),
        ({"feature2": "F"}, "feature1 must be a JSON array"),
        ({"feature1": "F", "feature2": "F", "model": "arcface/r100"}, "model mismatch"),
        ({"feature1": "F", "feature2": "F", "model": 3}, "model must be a string"),
    ],
)
async def test_compare_features_rejects_bad_vectors(client, obama, payload, message):
    payload = {k: obama["feature"] if v == "F" else v for k, v in payload.items()}
    status, body = await compare(client, payload)
    assert status == 400, body
    assert body["success"] is False and message in body["message"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
async def test_compare_features_rejects_nan_and_inf(client, obama, token):
    second = [*obama["feature"][:-1], "X"]
    raw = json.dumps({"feature1": obama["feature"], "feature2": second}).replace('"X"', token)
    status, body = await compare(client, raw, raw=True)
    assert status == 400 and body["success"] is False
    assert "feature2[127] is not a finite number" in body["message"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "request body is empty"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"feature1": [' + "0.1," * 70000 + "0.1]}", "limit"),
    ],
)
async def test_compare_features_rejects_bad_bodies(client, raw, message):
    status, body = await compare(client, raw, raw=True)
    assert status == 400 and body["success"] is False and message in body["message"]


async def test_extract_without_a_face(client):
    data = (NO_FACES / "chelsea.png").read_bytes()
    response = await client.post("/api/extract_feature", data=image_form(data), headers=AUTH)
    body = await response.json()
    assert response.status == 400 and body["success"] is False
    assert "no qualified face" in body["message"] and isinstance(body["processing_time"], float)


def tiny_jpeg() -> bytes:
    return encode_jpeg(np.full((60, 60, 3), 128, np.uint8))


@pytest.mark.parametrize(
    ("make_form", "message"),
    [
        (lambda: image_form(tiny_jpeg()), "the minimum is 100x100"),
        (lambda: image_form(b"hello, this is not an image at all"), "not a supported image"),
        (lambda: image_form(b""), "image is empty"),
        (lambda: image_form(b"\xff\xd8\xff" + bytes(4 * 2**20)), "exceeds the limit of 4194304 bytes"),
        (lambda: _form(other=b"x"), "missing file field 'image'"),
        (lambda: _form(image=b"a", image2=b"b", twice="image"), "given more than once"),
    ],
)
async def test_extract_rejects_bad_uploads(client, make_form, message):
    response = await client.post("/api/extract_feature", data=make_form(), headers=AUTH)
    body = await response.json()
    assert response.status == 400, body
    assert body["success"] is False and message in body["message"]


def _form(twice: str | None = None, **fields: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(twice if twice and name.startswith(twice) else name, value, filename="f.bin")
    return form


async def test_extract_needs_multipart(client):
    response = await client.post("/api/extract_feature", json={"image": "abc"}, headers=AUTH)
    body = await response.json()
    assert response.status == 400 and body["success"] is False and "multipart/form-data" in body["message"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"feature": "F"}, "missing file field 'image'"),
        ({"image": "obama2"}, "missing field 'feature'"),
        ({"image": "obama2", "feature": "[0.1, "}, "feature is not a JSON array"),
        ({"image": "obama2", "feature": "[0.1]"}, "feature has 1 values"),
        ({"image": "obama2", "feature": "F", "model": "dlib_resnet_v1/fp32"}, "model mismatch"),
        ({"image": "chelsea", "feature": "F"}, "no qualified face"),
    ],
)
async def test_compare_image_feature_rejects_bad_input(client, obama, fields, message):
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        if name == "image":
            path = FACES / "obama2.jpg" if value == "obama2" else NO_FACES / "chelsea.png"
            form.add_field("image", path.read_bytes(), filename=path.name)
        else:
            form.add_field(name, json.dumps(obama["feature"]) if value == "F" else value)
    response = await client.post("/api/compare_image_feature", data=form, headers=AUTH)
    body = await response.json()
    assert response.status == 400, body
    assert body["success"] is False and message in body["message"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/extract_feature", "post"),
        ("/api/compare_features", "post"),
        ("/api/compare_image_feature", "post"),
    ],
)
async def test_auth_in_the_feature_format(client, path, method):
    response = await client.request(method, path, json={})
    assert response.status == 401
    assert await response.json() == {"success": False, "message": "Missing Authorization header"}
    wrong = {"Authorization": "Bearer wrong-token-0123456789"}
    response = await client.request(method, path, json={}, headers=wrong)
    assert response.status == 403
    assert await response.json() == {"success": False, "message": "Invalid token"}


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=xyz", "multipart/mixed; boundary=a"],
)
async def test_a_malformed_multipart_body_is_a_400(client, content_type):
    headers = {**AUTH, "Content-Type": content_type}
    response = await client.post("/api/extract_feature", data=b"garbage\r\n--zzz\r\n", headers=headers)
    body = await response.json()
    assert response.status == 400, body
    assert body["success"] is False


async def test_an_upload_over_the_request_limit_is_a_413(make_client, config):
    client = await make_client(with_overrides(config, server={"max_request_bytes": 100_000}))
    form = _form(other=bytes(150_000))  # an ignored field still counts against the limit
    response = await client.post("/api/extract_feature", data=form, headers=AUTH)
    body = await response.json()
    assert response.status == 413, body
    assert body["success"] is False and "too large" in body["message"]
