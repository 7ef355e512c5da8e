"""Device API 1.1–1.7 through a real server: registration, listing, reading, deleting, reset,
restart persistence and concurrent registrations."""

from __future__ import annotations

import asyncio
import base64

import cv2
import numpy as np
import pytest
from api_device_support import (
    ASTRONAUT,
    BIDEN,
    NO_FACE,
    OBAMA,
    OBAMA2,
    RGBA_PNG,
    api_state,
    bind,
    call,
    create_group,
    data_url,
    db_state,
    enroll,
    jpeg,
    search,
    variants,
)
from conftest import AUTH, read_rgb

from daemon.config import with_overrides
from daemon.library.ids import image_id_from_bytes

FACE_KEYS = {"id", "imageId", "imgId", "faceToken", "description", "name", "gender"}


@pytest.fixture
async def client(make_client, config):
    return await make_client(config)


def rect_inside(rect: dict, width: int, height: int) -> bool:
    return 0 <= rect["left"] < rect["right"] <= width and 0 <= rect["top"] < rect["bottom"] <= height


# -- 1.1 register ----------------------------------------------------------------------------------


async def test_register_replays_the_original_example_with_a_png(client, config):
    # The original's request example, with a real PNG in place of "...".
    body = await call(
        client,
        "POST",
        "/api/faces",
        {"image": data_url(ASTRONAUT), "description": "8.png", "imageMd5": "", "name": "", "gender": ""},
    )
    data = body["data"]
    assert set(data) == {"id", "imageId", "faceToken", "rect"}
    assert isinstance(data["id"], int) and data["id"] >= 1
    assert data["imageId"] == image_id_from_bytes(ASTRONAUT.read_bytes())
    assert len(data["imageId"]) == 24
    assert len(data["faceToken"]) == 24 and "=" not in data["faceToken"]
    assert set(data["rect"]) == {"left", "top", "right", "bottom"}
    assert all(isinstance(v, int) for v in data["rect"].values())
    assert rect_inside(data["rect"], 512, 512)
    rows = db_state(config.database_path)
    assert rows["images"] == {data["imageId"]: ASTRONAUT.stat().st_size}  # the original, byte for byte
    assert rows["faces"][data["faceToken"]]["template"] == 128 * 4
    assert rows["bindings"] == [(data["faceToken"], "default")]


async def test_register_accepts_plain_base64_rgba_png_and_client_image_md5(client):
    payload = {"image": base64.b64encode(RGBA_PNG.read_bytes()).decode(), "imageMd5": "my-id_01=="}
    data = (await call(client, "POST", "/api/faces", payload))["data"]
    assert data["imageId"] == "my-id_01=="
    # The same imageMd5 with another image is the same key: already registered.
    await call(
        client, "POST", "/api/faces", {"image": data_url(OBAMA), "imageMd5": "my-id_01=="}, 400, 104204
    )


async def test_register_same_image_twice_is_face_already_exist(client, config):
    first = await enroll(client, OBAMA, description="first")
    before = db_state(config.database_path)
    body = await call(client, "POST", "/api/faces", {"image": data_url(OBAMA)}, 400, 104204)
    assert body["msg"] == "FACE_ALREADY_EXIST"
    assert db_state(config.database_path) == before
    assert before["images"].keys() == {first["imageId"]}


async def test_register_without_a_face_is_face_not_found(client, config):
    body = await call(client, "POST", "/api/faces", {"image": data_url(NO_FACE)}, 400, 104200)
    assert body["msg"] == "FACE_NOT_FOUND"
    assert db_state(config.database_path)["images"] == {}


@pytest.mark.parametrize(
    ("transform", "reason"),
    [
        (lambda rgb: cv2.GaussianBlur(rgb, (0, 0), 12), "blur"),
        (lambda rgb: (rgb * 0.12).astype(np.uint8), "dark,contrast"),
        (lambda rgb: cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE), "roll"),
        (
            lambda rgb: cv2.GaussianBlur(
                cv2.resize(rgb, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA), (0, 0), 2.5
            ),
            "size,blur",
        ),
    ],
)
async def test_register_quality_gate_names_every_failed_check(client, config, transform, reason):
    image = jpeg(np.ascontiguousarray(transform(read_rgb(OBAMA))))
    body = await call(client, "POST", "/api/faces", {"image": data_url(image)}, 400, 104201)
    assert body["msg"] == f"BAD_QUALITY:{reason}"
    assert db_state(config.database_path)["images"] == {}


async def test_quality_thresholds_come_from_config(make_client, config):
    strict = with_overrides(config, library={"min_face_size": 2000})
    client = await make_client(strict)
    body = await call(client, "POST", "/api/faces", {"image": data_url(OBAMA)}, 400, 104201)
    assert body["msg"] == "BAD_QUALITY:size"


async def test_register_uses_the_largest_face(client):
    # Two faces side by side: obama at full size, biden at half size. The rect is obama's.
    left = read_rgb(OBAMA)[100:700]
    right = cv2.resize(read_rgb(BIDEN)[200:800], None, fx=0.5, fy=0.5)
    canvas = np.full((600, left.shape[1] + right.shape[1], 3), 255, np.uint8)
    canvas[:, : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    data = await enroll(client, jpeg(canvas))
    assert data["rect"]["right"] <= left.shape[1]
    assert data["rect"]["right"] - data["rect"]["left"] > 200


# -- 1.2 list, paging ------------------------------------------------------------------------------


async def test_list_faces_shape_order_and_paging(client):
    a = await enroll(client, OBAMA, description="3.png", name="Barack", gender="male")
    b = await enroll(client, BIDEN, description="5.png")
    c = await enroll(client, ASTRONAUT, description="名前.png", name="アイリーン", gender="女")
    data = (await call(client, "GET", "/api/faces"))["data"]
    assert set(data) == {"totalFaces", "face"}
    assert data["totalFaces"] == 3
    assert [f["faceToken"] for f in data["face"]] == [a["faceToken"], b["faceToken"], c["faceToken"]]
    assert all(set(f) == FACE_KEYS for f in data["face"])
    first = data["face"][0]
    assert first == {
        "id": a["id"],
        "imageId": a["imageId"],
        "imgId": a["imageId"],
        "faceToken": a["faceToken"],
        "description": "3.png",
        "name": "Barack",
        "gender": "male",
    }
    assert data["face"][2]["name"] == "アイリーン"
    assert [f["id"] for f in data["face"]] == sorted(f["id"] for f in data["face"])

    page = (await call(client, "GET", "/api/faces?pageOffset=1&pageSize=1"))["data"]
    assert page["totalFaces"] == 3
    assert [f["faceToken"] for f in page["face"]] == [b["faceToken"]]
    past = (await call(client, "GET", "/api/faces?pageOffset=10&pageSize=1000"))["data"]
    assert past == {"totalFaces": 3, "face": []}
    # The contract's own notation, with empty values: the defaults.
    assert (await call(client, "GET", "/api/faces?pageOffset=&pageSize="))["data"] == data


@pytest.mark.parametrize(
    "query",
    ["pageOffset=-1", "pageSize=0", "pageSize=1001", "pageOffset=abc", "pageSize=1.5", "pageSize=%2B5"],
)
async def test_bad_paging_is_invalid_parameter(client, query):
    body = await call(client, "GET", f"/api/faces?{query}", status=400, code=104900)
    assert body["msg"].startswith("INVALID_PARAMETER:page")


# -- 1.3–1.6 ---------------------------------------------------------------------------------------


async def test_get_face_and_get_image(client):
    face = await enroll(client, OBAMA, description="3_best.jpg", gender="female")
    await create_group(client, "1")
    await bind(client, face["faceToken"], ["1"])
    data = (await call(client, "GET", f"/api/faces/faceToken/{face['faceToken']}"))["data"]
    assert set(data) == {"imageId", "description", "name", "gender", "rect", "faceGroupList", "image"}
    assert data["imageId"] == face["imageId"]
    assert (data["description"], data["name"], data["gender"]) == ("3_best.jpg", "", "female")
    assert data["rect"] == face["rect"]
    assert data["faceGroupList"] == [{"groupId": "default"}, {"groupId": "1"}]
    crop = cv2.imdecode(np.frombuffer(base64.b64decode(data["image"]), np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None
    rect = face["rect"]
    # The crop holds the face with a margin, and is much smaller than the original.
    assert crop.shape[1] >= rect["right"] - rect["left"] and crop.shape[0] >= rect["bottom"] - rect["top"]
    assert crop.shape[0] * crop.shape[1] < 1137 * 910 / 2

    image = (await call(client, "GET", f"/api/faces/image/{face['imageId']}"))["data"]
    assert set(image) == {"image", "faceToken"}
    assert base64.b64decode(image["image"]) == OBAMA.read_bytes()
    assert image["faceToken"] == [face["faceToken"]]


async def test_unknown_token_and_image_id_are_404(client):
    face = await enroll(client, OBAMA)
    before = await api_state(client)
    for method, path in [
        ("GET", "/api/faces/faceToken/AAAAAAAAAAAAAAAAAAAAAAAA"),
        ("DELETE", "/api/faces/AAAAAAAAAAAAAAAAAAAAAAAA"),
        ("GET", "/api/faces/image/nope"),
        ("DELETE", "/api/faces/image/nope"),
    ]:
        body = await call(client, method, path, status=404, code=104903)
        assert body["msg"].startswith("NOT_FOUND:")
    body = await call(
        client, "POST", "/api/faceGroups/binding/nope", {"faceGroupList": ["default"]}, 404, 104903
    )
    assert body["msg"] == "NOT_FOUND:unknown faceToken"
    assert await api_state(client) == before
    assert face["faceToken"] in before["members"]["default"]


async def test_delete_face_keeps_original_image_and_description(client, config):
    face = await enroll(client, OBAMA, description="keep me")
    other = await enroll(client, BIDEN)
    await create_group(client, "g")
    await bind(client, face["faceToken"], ["g"])
    await call(client, "DELETE", f"/api/faces/{face['faceToken']}")
    rows = db_state(config.database_path)
    assert face["faceToken"] not in rows["faces"]
    assert face["imageId"] in rows["images"]
    assert rows["bindings"] == [(other["faceToken"], "default")]
    image = (await call(client, "GET", f"/api/faces/image/{face['imageId']}"))["data"]
    assert image["faceToken"] == [] and base64.b64decode(image["image"]) == OBAMA.read_bytes()
    await call(client, "GET", f"/api/faces/faceToken/{face['faceToken']}", status=404, code=104903)
    state = await api_state(client)
    assert state["faces"]["totalFaces"] == 1
    assert {g["groupId"]: g["groupFaces"] for g in state["groups"]} == {"default": 1, "g": 0}
    # The template is gone from the index: searching obama finds nothing.
    assert (await search(client, OBAMA2, ["default", "g"]))["top1"] == {}
    # The original stays registered: the same image is still FACE_ALREADY_EXIST.
    await call(client, "POST", "/api/faces", {"image": data_url(OBAMA)}, 400, 104204)


async def test_delete_image_removes_faces_then_original(client, config):
    face = await enroll(client, OBAMA)
    await call(client, "DELETE", f"/api/faces/image/{face['imageId']}")
    assert db_state(config.database_path) == {
        "images": {},
        "faces": {},
        "bindings": [],
        "groups": ["default"],
    }
    await call(client, "GET", f"/api/faces/image/{face['imageId']}", status=404, code=104903)
    again = await enroll(client, OBAMA)  # the imageId is free again
    assert again["imageId"] == face["imageId"] and again["faceToken"] != face["faceToken"]


async def test_reset_deletes_faces_and_images_but_keeps_groups(client, config):
    a = await enroll(client, OBAMA)
    await enroll(client, BIDEN)
    await create_group(client, "staff", 70)
    await bind(client, a["faceToken"], ["staff"])
    await call(client, "DELETE", "/api/faces/facesLib")
    rows = db_state(config.database_path)
    assert rows == {"images": {}, "faces": {}, "bindings": [], "groups": ["default", "staff"]}
    groups = (await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"]
    assert [(g["groupId"], g["groupScore"], g["groupFaces"]) for g in groups] == [
        ("default", 80, 0),
        ("staff", 70, 0),
    ]
    assert (await search(client, OBAMA2, ["default", "staff"]))["top1"] == {}


# -- persistence and concurrency -------------------------------------------------------------------


async def test_restart_on_the_same_state_dir_gives_the_same_results(make_client, config):
    first = await make_client(config)
    obama = await enroll(first, OBAMA, description="o", name="Barack")
    await enroll(first, BIDEN, description="b")
    await create_group(first, "vip", 85, "VIP")
    await bind(first, obama["faceToken"], ["vip"])
    state = await api_state(first)
    found = await search(first, OBAMA2, ["vip"], topN=5)
    await first.close()

    second = await make_client(config)
    assert await api_state(second) == state
    assert await search(second, OBAMA2, ["vip"], topN=5) == found
    assert found["top1"]["faceToken"] == obama["faceToken"]
    health = await (await second.get("/health", headers=AUTH)).json()
    assert health["library"]["indexed_faces"] == 2


async def test_fifty_concurrent_registrations_are_all_stored(make_client, config):
    cfg = with_overrides(config, workers={"max_pending": 128})
    client = await make_client(cfg)
    images = variants(50)
    assert len({image_id_from_bytes(i) for i in images}) == 50

    async def register(image: bytes) -> dict:
        response = await client.post("/api/faces", json={"image": data_url(image)}, headers=AUTH)
        body = await response.json()
        assert response.status == 200, body
        return body["data"]

    results = await asyncio.gather(*(register(i) for i in images))
    assert {r["imageId"] for r in results} == {image_id_from_bytes(i) for i in images}
    assert len({r["faceToken"] for r in results}) == 50
    assert len({r["id"] for r in results}) == 50
    listing = (await call(client, "GET", "/api/faces?pageSize=1000"))["data"]
    assert listing["totalFaces"] == 50
    assert {f["faceToken"] for f in listing["face"]} == {r["faceToken"] for r in results}
    rows = db_state(cfg.database_path)
    assert len(rows["images"]) == len(rows["faces"]) == len(rows["bindings"]) == 50
    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["library"]["indexed_faces"] == 50
    groups = (await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"]
    assert groups[0]["groupFaces"] == 50
