"""Device API 3.1 (compare) and 3.2 (search) through a real server: shapes, scores, group
thresholds, topN, featureUpload, liveness, backpressure and model mismatch."""

from __future__ import annotations

import asyncio
import base64
import math
import threading

import numpy as np
import pytest
from api_device_support import (
    ASTRONAUT,
    BIDEN,
    NO_FACE,
    OBAMA,
    OBAMA2,
    OBAMA3,
    RGBA_PNG,
    bind,
    call,
    create_group,
    data_url,
    enroll,
    search,
    unbind,
)
from conftest import AUTH

from daemon.appkeys import POOL
from daemon.config import PACKAGE_MODELS_DIR, with_overrides

DETECTION_KEYS = {"left", "top", "right", "bottom", "roll", "yaw", "pitch", "blurness"}
HIT_KEYS = {"group", "searchScore", "faceToken", "description", "imageUrl"}


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


def check_detection(d: dict, width: int, height: int, with_quality: bool) -> None:
    assert set(d) == DETECTION_KEYS | ({"quality"} if with_quality else set())
    for key in ("left", "top", "right", "bottom", "roll", "yaw", "pitch"):
        assert isinstance(d[key], int) and not isinstance(d[key], bool), key
    assert 0 <= d["left"] < d["right"] <= width and 0 <= d["top"] < d["bottom"] <= height
    assert isinstance(d["blurness"], float) and 0 <= d["blurness"] <= 100
    if with_quality:
        assert isinstance(d["quality"], float) and 0 <= d["quality"] <= 1


def check_hit(hit: dict) -> None:
    assert set(hit) == HIT_KEYS
    assert isinstance(hit["searchScore"], float) and 0 <= hit["searchScore"] <= 100
    assert base64.b64decode(hit["imageUrl"])[:3] == b"\xff\xd8\xff"  # the stored JPEG crop


async def compare(client, image1, image2, **fields) -> dict:
    payload = {"image1": data_url(image1), "image2": data_url(image2), **fields}
    return (await call(client, "POST", "/api/face/compare", payload))["data"]


# -- 3.1 -------------------------------------------------------------------------------------------


async def test_compare_replays_the_original_example(client):
    # The original example labels both images PNG; the type is sniffed from the bytes anyway.
    payload = {
        "image1": data_url(OBAMA, "image/png"),
        "image2": data_url(OBAMA2, "image/png"),
        "livenessEnabled": False,
    }
    data = (await call(client, "POST", "/api/face/compare", payload))["data"]
    assert set(data) == {"compareScore", "detectionResult1", "detectionResult2"}
    assert isinstance(data["compareScore"], float)
    check_detection(data["detectionResult1"], 910, 1137, with_quality=False)
    check_detection(data["detectionResult2"], 626, 1200, with_quality=False)
    # The default groupScore 80 is the operating point: the same person passes it, others do not.
    assert data["compareScore"] >= 80
    other = await compare(client, OBAMA2, BIDEN)
    assert other["compareScore"] < 80
    assert data["compareScore"] - other["compareScore"] > 20
    same = await compare(client, OBAMA, OBAMA)
    assert same["compareScore"] == 100.0
    assert same["detectionResult1"] == same["detectionResult2"] == data["detectionResult1"]


async def test_compare_errors_name_the_image(client):
    body = await call(
        client,
        "POST",
        "/api/face/compare",
        {"image1": data_url(OBAMA), "image2": data_url(NO_FACE)},
        400,
        104200,
    )
    assert body["msg"] == "FACE_NOT_FOUND"
    body = await call(
        client, "POST", "/api/face/compare", {"image1": data_url(OBAMA), "image2": "@@@"}, 400, 104900
    )
    assert body["msg"].startswith("INVALID_PARAMETER:image2: image is not valid base64")
    body = await call(client, "POST", "/api/face/compare", {"image1": data_url(OBAMA)}, 400, 104900)
    assert body["msg"] == "INVALID_PARAMETER:image2 is required"


async def test_liveness_on_a_device_with_liveness_disabled_is_a_clear_error(make_client, config):
    # 104906 is only for a device whose liveness model is deliberately disabled (liveness.enabled:
    # false); with liveness on, tests/test_api_liveness.py.
    client = await make_client(with_overrides(config, liveness={"enabled": False}))
    enrolled = await enroll(client, OBAMA)
    body = await call(
        client,
        "POST",
        "/api/face/compare",
        {"image1": data_url(OBAMA), "image2": data_url(OBAMA2), "livenessEnabled": True},
        400,
        104906,
    )
    assert body["msg"] == "LIVENESS_NOT_AVAILABLE"
    payload = {"image": data_url(OBAMA2), "group": ["default"], "livenessEnabled": True}
    body = await call(client, "POST", "/api/face/search", payload, 400, 104906)
    assert body["msg"] == "LIVENESS_NOT_AVAILABLE"
    # livenessEnabled false (the default) works, and no livenessScore is made up.
    found = await search(client, OBAMA2, ["default"], livenessEnabled=False)
    assert found["top1"]["faceToken"] == enrolled["faceToken"]
    assert "livenessScore" not in found["detectionResult"]


# -- 3.2 -------------------------------------------------------------------------------------------


async def test_search_replays_the_original_example(client):
    obama = await enroll(client, OBAMA, description="3.png")
    await create_group(client, "group1")
    await create_group(client, "group2")
    await bind(client, obama["faceToken"], ["group2"])
    payload = {
        "image": data_url(OBAMA2),
        "group": ["group1", "group2"],
        "topN": 5,
        "livenessEnabled": False,
        "featureUpload": False,
    }
    data = (await call(client, "POST", "/api/face/search", payload))["data"]
    assert set(data) == {"detectionResult", "top1", "top2", "top3", "top4", "top5"}
    check_detection(data["detectionResult"], 626, 1200, with_quality=True)
    check_hit(data["top1"])
    assert data["top1"]["faceToken"] == obama["faceToken"]
    assert data["top1"]["description"] == "3.png"
    # Every group the face is bound to, not only the searched ones.
    assert data["top1"]["group"] == [{"groupId": "default"}, {"groupId": "group2"}]
    assert data["top1"]["searchScore"] >= 80
    assert [data[f"top{i}"] for i in range(2, 6)] == [{}] * 4
    crop = (await call(client, "GET", f"/api/faces/faceToken/{obama['faceToken']}"))["data"]["image"]
    assert data["top1"]["imageUrl"] == crop


async def test_search_obama_found_biden_not(client):
    obama = await enroll(client, OBAMA)
    await enroll(client, ASTRONAUT)
    found = await search(client, OBAMA2, ["default"])
    assert found["top1"]["faceToken"] == obama["faceToken"]
    missing = await search(client, BIDEN, ["default"], topN=5)
    assert [missing[f"top{i}"] for i in range(1, 6)] == [{}] * 5
    check_detection(missing["detectionResult"], 970, 2204, with_quality=True)


async def test_search_thresholds_are_the_groups_scores(client):
    obama = await enroll(client, OBAMA)
    token = obama["faceToken"]
    score = (await search(client, OBAMA2, ["default"]))["top1"]["searchScore"]
    compared = (await compare(client, OBAMA, OBAMA2))["compareScore"]
    assert math.isclose(score, compared, abs_tol=0.01)  # one mapping for 3.1 and 3.2
    await create_group(client, "strict", math.floor(score) + 1)
    await create_group(client, "loose", math.floor(score) - 1)
    await create_group(client, "empty", 0)
    await bind(client, token, ["strict"])
    assert (await search(client, OBAMA2, ["strict"]))["top1"] == {}
    # A group that does not hold the face does not lower its threshold.
    assert (await search(client, OBAMA2, ["strict", "empty"]))["top1"] == {}
    await bind(client, token, ["loose"])
    assert (await search(client, OBAMA2, ["loose"]))["top1"]["faceToken"] == token
    # The lowest groupScore among the searched groups the face is bound to decides.
    assert (await search(client, OBAMA2, ["strict", "loose"]))["top1"]["faceToken"] == token
    # Raising a group's score (2.7) takes effect at once.
    await call(client, "PUT", "/api/faceGroups", {"groupId": "loose", "groupScore": 100})
    assert (await search(client, OBAMA2, ["strict", "loose"]))["top1"] == {}
    # Score 0 accepts any face bound to the group, however different.
    await bind(client, token, ["empty"])
    anyone = await search(client, BIDEN, ["empty"])
    assert anyone["top1"]["faceToken"] == token and anyone["top1"]["searchScore"] < 80
    # Unbound from every searched group: not found.
    await unbind(client, token, ["empty", "loose", "strict"])
    assert (await search(client, BIDEN, ["empty"]))["top1"] == {}


async def test_search_top_n_orders_by_score_and_feature_upload(client):
    tokens = {p.name: (await enroll(client, p))["faceToken"] for p in (OBAMA, OBAMA3, RGBA_PNG, BIDEN)}
    data = await search(client, OBAMA2, ["default"], topN=3, featureUpload=True)
    hits = [data[f"top{i}"] for i in range(1, 4)]
    for hit in hits:
        check_hit(hit)
    scores = [h["searchScore"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[-1] >= 80
    assert hits[0]["faceToken"] == tokens["32bit.png"]  # obama2 itself, as RGBA PNG
    assert {h["faceToken"] for h in hits} == {tokens[n] for n in ("32bit.png", "obama.jpg", "obama3.jpg")}
    assert data["top4"] == data["top5"] == {}
    feature = data["feature"]
    assert len(feature) == 128 and all(isinstance(v, float) for v in feature)
    assert 0.5 < math.sqrt(sum(v * v for v in feature)) < 3  # a raw dlib descriptor, length ~1.4
    one = await search(client, OBAMA2, ["default"])
    assert one["top1"] == hits[0] and one["top2"] == {} and "feature" not in one


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"group": []}, "group must not be empty"),
        ({"group": "default"}, "group must be an array of strings, not a string"),
        ({"group": ["default", 7]}, "group must hold only strings, found a number"),
        ({"group": None}, "group is required"),
        ({"topN": 0}, "topN must be between 1 and 5, not 0"),
        ({"topN": 6}, "topN must be between 1 and 5, not 6"),
        ({"topN": "1"}, "topN must be an integer, not a string"),
        ({"topN": True}, "topN must be an integer, not a boolean"),
        ({"topN": 1.0}, "topN must be an integer, not a number"),
        ({"featureUpload": "yes"}, "featureUpload must be true or false, not a string"),
        ({"livenessEnabled": 0}, "livenessEnabled must be true or false, not a number"),
        ({"image": 5}, "image must be a base64 string, not a number"),
        ({"image": ""}, "image must not be empty"),
    ],
)
async def test_search_parameters_are_validated(client, fields, reason):
    payload = {"image": data_url(OBAMA2), "group": ["default"], **fields}
    body = await call(client, "POST", "/api/face/search", payload, 400, 104900)
    assert body["msg"] == f"INVALID_PARAMETER:{reason}"


async def test_search_unknown_group_and_no_face(client):
    await enroll(client, OBAMA)
    payload = {"image": data_url(OBAMA2), "group": ["default", "nope"]}
    body = await call(client, "POST", "/api/face/search", payload, 400, 104311)
    assert body["msg"] == "GROUP_ID_NOT_EXIST"
    payload = {"image": data_url(NO_FACE), "group": ["default"]}
    assert (await call(client, "POST", "/api/face/search", payload, 400, 104200))["msg"] == "FACE_NOT_FOUND"


# -- backpressure and models -----------------------------------------------------------------------


async def test_saturated_workers_answer_503_in_device_format(make_client, config):
    cfg = with_overrides(config, workers={"count": 1, "max_pending": 1})
    client = await make_client(cfg)
    pool = client.server.app[POOL]
    release = threading.Event()
    busy = asyncio.ensure_future(pool.run(lambda _engine: release.wait(10)))
    while pool.stats()["pending"] < 1:
        await asyncio.sleep(0.01)
    try:
        payload = {"image": data_url(OBAMA2), "group": ["default"]}
        response = await client.post("/api/face/search", json=payload, headers=AUTH)
        body = await response.json()
        assert response.status == 503
        assert body["code"] == 104904 and body["msg"].startswith("OVERLOADED:") and body["data"] == {}
        assert int(response.headers["Retry-After"]) >= 1
        # Library management does not wait for the inference workers.
        await call(client, "GET", "/api/faceGroups")
        await create_group(client, "while-busy")
    finally:
        release.set()
        await busy
    await enroll(client, OBAMA)  # and recognition works again once the pool has room


async def test_engine_of_another_model_is_model_mismatch(make_client, config):
    from daemon.app import engine_from_config
    from daemon.vision.engine import ModelPaths

    fp32 = ModelPaths.resolve(PACKAGE_MODELS_DIR, "fp32")
    client = await make_client(config, engine_factory=lambda: engine_from_config(config, fp32))
    body = await call(client, "POST", "/api/faces", {"image": data_url(OBAMA)}, 500, 104907)
    assert body["msg"] == "MODEL_MISMATCH"
    body = await call(
        client, "POST", "/api/face/search", {"image": data_url(OBAMA2), "group": ["default"]}, 500, 104907
    )
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 0
    # Comparing two fresh images involves no stored template: it works.
    assert (await compare(client, OBAMA, OBAMA2))["compareScore"] >= 80


async def test_templates_of_another_model_are_kept_but_never_compared(make_client, config):
    from conftest import open_library

    config.database_path.parent.mkdir(parents=True)
    with open_library(config.database_path) as store:
        store.add_face(
            image_id="old-model-image",
            original=OBAMA.read_bytes(),
            kind="jpeg",
            width=910,
            height=1137,
            description="enrolled by an older model",
            name="",
            gender="",
            rect=(359, 149, 623, 414),
            crop_jpeg=b"\xff\xd8\xff\xd9",
            template=np.ones(64, np.float32),
            model_id="some_other_model/v0",
            quality=None,
        )
    client = await make_client(config)
    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["library"] == {"model": "dlib_resnet_v1/int8", "indexed_faces": 0, "other_model_faces": 1}
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 1
    assert (await search(client, OBAMA2, ["default"], topN=5))["top1"] == {}
    current = await enroll(client, OBAMA3)
    assert (await search(client, OBAMA2, ["default"], topN=5))["top1"]["faceToken"] == current["faceToken"]
    await call(client, "DELETE", "/api/faces/image/old-model-image")
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 1
