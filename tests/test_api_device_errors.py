"""Bad requests to the device API: every one answered 4xx in the device envelope with a reason,
and the library left exactly as it was. Plus the 1049xx codes for auth, body size and a broken
database."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3

import cv2
import numpy as np
import pytest
from api_device_support import (
    OBAMA,
    OBAMA2,
    call,
    create_group,
    data_url,
    enroll,
    full_state,
    jpeg,
    png_header_only,
)
from conftest import AUTH, read_rgb

from daemon.config import with_overrides
from daemon.library.ids import image_id_from_bytes


@pytest.fixture
async def populated(make_client, config):
    """A library with two faces and a group, and its full state (API + SQLite rows)."""
    client = await make_client(config)
    face = await enroll(client, OBAMA, description="obama")
    await create_group(client, "staff", 70)
    await call(client, "POST", f"/api/faceGroups/binding/{face['faceToken']}", {"faceGroupList": ["staff"]})
    return client, face, await full_state(client, config)


AUTH_JSON = {**AUTH, "Content-Type": "application/json"}

BODY_ROUTES = [
    ("POST", "/api/faces"),
    ("POST", "/api/faceGroups"),
    ("PUT", "/api/faceGroups"),
    ("DELETE", "/api/faceGroups/staff"),
    ("POST", "/api/faceGroups/binding/{token}"),
    ("DELETE", "/api/faceGroups/unbind/{token}"),
    ("POST", "/api/face/compare"),
    ("POST", "/api/face/search"),
]

MALFORMED = [
    (b"", "request body is empty, expected a JSON object"),
    (b"{", "malformed JSON: "),
    (b'{"image": "abc",}', "malformed JSON: "),
    (b"[1, 2]", "the JSON body must be an object, not an array"),
    (b'"text"', "the JSON body must be an object, not a string"),
    (b"null", "the JSON body must be an object, not null"),
    (b'{"groupScore": NaN}', "malformed JSON: NaN is not valid JSON"),
    (b'{"description": "\xff\xfe"}', "request body is not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "malformed JSON: "),
    (b'{"image": "' + b"A" * 400_000 + b'"', "malformed JSON: "),  # large: parsed in the pool
]


async def test_malformed_bodies_on_every_route_change_nothing(populated, config):
    client, face, before = populated
    for method, route in BODY_ROUTES:
        path = route.format(token=face["faceToken"])
        for body, reason in MALFORMED:
            answer = await call(client, method, path, status=400, code=104900, data=body, headers=AUTH_JSON)
            assert answer["msg"].startswith(f"INVALID_PARAMETER:{reason}"), (path, body[:20], answer)
    assert await full_state(client, config) == before


def field_cases(token: str) -> list[tuple[str, str, dict, str]]:
    """(method, path, body, reason) for missing, mistyped and oversized fields."""
    img = data_url(OBAMA2)
    return [
        # 1.1
        ("POST", "/api/faces", {}, "image is required"),
        ("POST", "/api/faces", {"image": None}, "image is required"),
        ("POST", "/api/faces", {"image": 12}, "image must be a base64 string, not a number"),
        (
            "POST",
            "/api/faces",
            {"image": img, "description": 5},
            "description must be a string, not a number",
        ),
        ("POST", "/api/faces", {"image": img, "name": []}, "name must be a string, not an array"),
        ("POST", "/api/faces", {"image": img, "gender": {}}, "gender must be a string, not an object"),
        ("POST", "/api/faces", {"image": img, "imageMd5": 7}, "imageMd5 must be a string, not a number"),
        (
            "POST",
            "/api/faces",
            {"image": img, "description": "d" * 256},
            "description is 256 bytes, the limit is 255 bytes (UTF-8)",
        ),
        # 86 characters but 258 bytes: the limit is in bytes.
        (
            "POST",
            "/api/faces",
            {"image": img, "description": "名" * 86},
            "description is 258 bytes, the limit is 255 bytes (UTF-8)",
        ),
        (
            "POST",
            "/api/faces",
            {"image": img, "name": "n" * 129},
            "name is 129 bytes, the limit is 128 bytes (UTF-8)",
        ),
        (
            "POST",
            "/api/faces",
            {"image": img, "gender": "ü" * 9},
            "gender is 18 bytes, the limit is 16 bytes (UTF-8)",
        ),
        (
            "POST",
            "/api/faces",
            {"image": img, "imageMd5": "a" * 33},
            "imageMd5 is 33 bytes, the limit is 32 bytes (UTF-8)",
        ),
        (
            "POST",
            "/api/faces",
            {"image": img, "imageMd5": "ab/cd+ef"},
            "imageMd5 may hold only the characters A-Z a-z 0-9 - _ =",
        ),
        # 2.2
        ("POST", "/api/faceGroups", {"groupName": "x"}, "groupId is required"),
        ("POST", "/api/faceGroups", {"groupId": "x"}, "groupName is required"),
        ("POST", "/api/faceGroups", {"groupId": "", "groupName": "x"}, "groupId must not be empty"),
        ("POST", "/api/faceGroups", {"groupId": "x", "groupName": ""}, "groupName must not be empty"),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": 1, "groupName": "x"},
            "groupId must be a string, not a number",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "g" * 33, "groupName": "x"},
            "groupId is 33 bytes, the limit is 32 bytes (UTF-8)",
        ),
        ("POST", "/api/faceGroups", {"groupId": "a/b", "groupName": "x"}, "groupId must not contain '/'"),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "n" * 129},
            "groupName is 129 bytes, the limit is 128 bytes (UTF-8)",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "x", "groupType": "t" * 129},
            "groupType is 129 bytes, the limit is 128 bytes (UTF-8)",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "x", "groupScore": "80"},
            "groupScore must be an integer, not a string",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "x", "groupScore": True},
            "groupScore must be an integer, not a boolean",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "x", "groupScore": 80.5},
            "groupScore must be an integer, not a number",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "x", "groupScore": 101},
            "groupScore must be between 0 and 100, not 101",
        ),
        (
            "POST",
            "/api/faceGroups",
            {"groupId": "x", "groupName": "x", "groupScore": -1},
            "groupScore must be between 0 and 100, not -1",
        ),
        # 2.7
        ("PUT", "/api/faceGroups", {"groupScore": 50}, "groupId is required"),
        (
            "PUT",
            "/api/faceGroups",
            {"groupId": "staff", "groupScore": 200},
            "groupScore must be between 0 and 100, not 200",
        ),
        ("PUT", "/api/faceGroups", {"groupId": "staff", "groupName": ""}, "groupName must not be empty"),
        (
            "PUT",
            "/api/faceGroups",
            {"groupId": "staff", "groupType": 3},
            "groupType must be a string, not a number",
        ),
        # 2.3
        ("DELETE", "/api/faceGroups/staff", {}, "deleteAllFace is required"),
        (
            "DELETE",
            "/api/faceGroups/staff",
            {"deleteAllFace": 0},
            "deleteAllFace must be between 1 and 4, not 0",
        ),
        (
            "DELETE",
            "/api/faceGroups/staff",
            {"deleteAllFace": 5},
            "deleteAllFace must be between 1 and 4, not 5",
        ),
        (
            "DELETE",
            "/api/faceGroups/staff",
            {"deleteAllFace": "1"},
            "deleteAllFace must be an integer, not a string",
        ),
        (
            "DELETE",
            "/api/faceGroups/staff",
            {"deleteAllFace": True},
            "deleteAllFace must be an integer, not a boolean",
        ),
        # 2.5, 2.6
        ("POST", f"/api/faceGroups/binding/{token}", {}, "faceGroupList is required"),
        (
            "POST",
            f"/api/faceGroups/binding/{token}",
            {"faceGroupList": []},
            "faceGroupList must not be empty",
        ),
        (
            "POST",
            f"/api/faceGroups/binding/{token}",
            {"faceGroupList": "staff"},
            "faceGroupList must be an array of strings, not a string",
        ),
        (
            "DELETE",
            f"/api/faceGroups/unbind/{token}",
            {"faceGroupList": ["staff", None]},
            "faceGroupList must hold only strings, found null",
        ),
        (
            "DELETE",
            f"/api/faceGroups/unbind/{token}",
            {"faceGroupList": ["g"] * 257},
            "faceGroupList has 257 entries, the limit is 256",
        ),
        # 3.1
        ("POST", "/api/face/compare", {"image2": img}, "image1 is required"),
        (
            "POST",
            "/api/face/compare",
            {"image1": img, "image2": img, "livenessEnabled": "false"},
            "livenessEnabled must be true or false, not a string",
        ),
    ]


async def test_missing_mistyped_and_oversized_fields_change_nothing(populated, config):
    client, face, before = populated
    for method, path, body, reason in field_cases(face["faceToken"]):
        answer = await call(client, method, path, body, 400, 104900)
        assert answer["msg"] == f"INVALID_PARAMETER:{reason}", (method, path)
    assert await full_state(client, config) == before


async def test_fields_at_their_limits_are_accepted(make_client, config):
    client = await make_client(config)
    fields = {"description": "名" * 85, "name": "n" * 128, "gender": "ü" * 8, "imageMd5": "a-Z_9=" * 5 + "xy"}
    data = await enroll(client, OBAMA, **fields)
    assert data["imageId"] == fields["imageMd5"]
    listed = (await call(client, "GET", "/api/faces"))["data"]["face"][0]
    assert {k: listed[k] for k in ("description", "name", "gender")} == {
        k: fields[k] for k in ("description", "name", "gender")
    }
    await call(
        client,
        "POST",
        "/api/faceGroups",
        {"groupId": "g" * 32, "groupName": "名" * 42, "groupType": "t" * 128},
    )
    # Unknown fields are ignored; null means absent for optional ones.
    await call(
        client, "POST", "/api/faceGroups", {"groupId": "h", "groupName": "h", "groupType": None, "extra": 1}
    )
    groups = (await call(client, "GET", "/api/faceGroups"))["data"]["faceGroupList"]
    assert [g["groupId"] for g in groups] == ["default", "g" * 32, "h"]


def image_cases() -> list[tuple[str, str]]:
    """(image field, reason prefix) for images the device limits refuse."""
    noise = os.urandom(4 * 1024 * 1024 + 1)
    huge = png_header_only(8000, 7000, bit_depth=8, colour_type=2)  # 56 MP: beyond library.max_image_pixels
    small = jpeg(np.ascontiguousarray(read_rgb(OBAMA)[:99, :500]))
    gif = b"GIF89a" + bytes(100)
    webp = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(40)
    return [
        ("!!!not base64!!!", "image: image is not valid base64: unexpected character '!'"),
        ("data:image/jpeg;base64,QUJD=QUJD", "image: image is not valid base64: unexpected '=' inside"),
        ("QUJDR", "image: image is not valid base64: wrong length or padding"),
        ("data:image/jpeg,QUJD", "image: data URL is not base64-encoded"),
        ("data:image/jpeg;base64,", "image: image is empty"),
        (data_url(b"hello, this is text", "text/plain"), "image: not a supported image"),
        (data_url(gif, "image/gif"), "image: not a supported image"),
        (data_url(webp, "image/webp"), "image: WebP images are not accepted here"),
        (data_url(OBAMA.read_bytes()[:2000]), "image: image is truncated"),
        (data_url(noise), "image: image is 4194305 bytes, the limit is 4194304 bytes"),
        (data_url(huge, "image/png"), "image: image is 8000x7000, the limit is 4096x2160 (in either"),
        (data_url(small), "image: image is 500x99, the minimum is 100x100"),
    ]


async def test_bad_images_are_invalid_parameter_and_change_nothing(populated, config):
    client, _, before = populated
    for image, reason in image_cases():
        answer = await call(client, "POST", "/api/faces", {"image": image}, 400, 104900)
        assert answer["msg"].startswith(f"INVALID_PARAMETER:{reason}"), answer["msg"]
    # The same checks guard search and compare (naming the field).
    answer = await call(
        client, "POST", "/api/face/search", {"image": "QUJDR", "group": ["default"]}, 400, 104900
    )
    assert answer["msg"].startswith("INVALID_PARAMETER:image: image is not valid base64")
    assert await full_state(client, config) == before


async def test_portrait_and_small_images_where_the_contract_allows_them(make_client, config):
    client = await make_client(config)
    # 4096×2160 in either orientation (Decision): a 2160×4096 portrait passes the limits.
    face = cv2.resize(read_rgb(OBAMA), None, fx=2, fy=2)
    portrait = np.full((4096, 2160, 3), 255, np.uint8)
    portrait[1000 : 1000 + face.shape[0], 100 : 100 + face.shape[1]] = face
    answer = await call(client, "POST", "/api/faces", {"image": data_url(jpeg(portrait))})
    assert answer["data"]["rect"]["bottom"] <= 4096
    # Below 100×100 is refused for enrollment only; compare takes a tight 90×90 crop.
    tiny = jpeg(np.ascontiguousarray(cv2.resize(read_rgb(OBAMA)[130:440, 330:650], (90, 90))))
    answer = await call(
        client, "POST", "/api/face/compare", {"image1": data_url(tiny), "image2": data_url(OBAMA)}
    )
    assert answer["data"]["detectionResult1"]["right"] <= 90


async def test_body_over_the_request_limit_is_104908(make_client, config):
    client = await make_client(with_overrides(config, server={"max_request_bytes": 64 * 1024}))
    answer = await call(client, "POST", "/api/faces", {"image": data_url(OBAMA)}, 413, 104908)
    assert answer["msg"].startswith("PAYLOAD_TOO_LARGE:")
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 0


@pytest.mark.parametrize(
    ("headers", "status", "code", "msg"),
    [
        ({}, 401, 104901, "UNAUTHORIZED:Missing Authorization header"),
        (
            {"Authorization": "Basic dXNlcjpwYXNz"},
            401,
            104901,
            "UNAUTHORIZED:Invalid Authorization header: expected 'Bearer <token>'",
        ),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 403, 104902, "FORBIDDEN:Invalid token"),
    ],
)
async def test_auth_failures_in_the_device_envelope(make_client, config, headers, status, code, msg):
    client = await make_client(config)
    for method, path in [
        ("GET", "/api/faces"),
        ("POST", "/api/face/search"),
        ("DELETE", "/api/faces/facesLib"),
    ]:
        answer = await call(client, method, path, {"group": ["default"]}, status, code, headers=headers)
        assert answer["msg"] == msg


async def test_a_broken_database_is_an_internal_error_without_internals(make_client, config):
    client = await make_client(config)
    await enroll(client, OBAMA)
    conn = sqlite3.connect(config.database_path)
    conn.execute("ALTER TABLE images RENAME TO images_gone")
    conn.commit()
    conn.close()
    answer = await call(client, "GET", "/api/faces", status=500, code=104905)
    assert answer["msg"].startswith("INTERNAL_ERROR:internal error (request id ")
    assert "images" not in answer["msg"]
    # The failed request left the process serving.
    await call(client, "GET", "/api/faceGroups")


def test_image_md5_example_from_the_original():
    """The imageMd5 rule of the original (md5 → base64, '+'→'-', '/'→'_') is the derived imageId."""
    data = OBAMA.read_bytes()
    expected = base64.b64encode(hashlib.md5(data).digest()).decode().replace("+", "-").replace("/", "_")
    assert image_id_from_bytes(data) == expected
