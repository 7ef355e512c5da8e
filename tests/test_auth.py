"""Authentication and scopes on a real app: each API family's error format, and who may call what."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from conftest import AUTH, FACES

from daemon.api.families import DEVICE, FEATURE, speaks
from daemon.api.scopes import unscoped_routes
from daemon.app import build_app
from daemon.appkeys import PRINCIPAL, STATUS
from daemon.services.tokens import ADMIN, LIBRARY, PRIVACY, READ, RECOGNIZE, STREAM, TokenRegistry

TOKENS = {
    ADMIN: "admin-token-9f8e7d6c5b4a3210",
    LIBRARY: "library-token-0a1b2c3d4e5f6789",
    RECOGNIZE: "recognize-token-77aa88bb99ccddee",
    PRIVACY: "privacy-token-1234abcd5678efgh",
    STREAM: "stream-token-zyxwvut987654321",
    READ: "read-token-qwertyuiop0987654",
}


def bearer(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[scope]}"}


@pytest.fixture
def scoped_tokens() -> TokenRegistry:
    return TokenRegistry.of([(f"{scope}-user", token, [scope]) for scope, token in TOKENS.items()])


@pytest.fixture
async def client(aiohttp_client, config, model_paths, tokens):
    app = build_app(config, model_paths, tokens)

    @speaks(DEVICE)
    async def device_route(request):
        return web.json_response({"code": 0, "msg": "SUCCESS", "data": {"who": request[PRINCIPAL]}})

    @speaks(FEATURE)
    async def feature_route(request):
        return web.json_response({"success": True})

    async def plain_route(request):
        return web.json_response({"ok": True})

    async def broken_route(request):
        raise RuntimeError("boom")

    app.router.add_get("/device", device_route)
    app.router.add_get("/feature", feature_route)
    app.router.add_get("/plain", plain_route)
    app.router.add_get("/broken", speaks(DEVICE)(broken_route))
    client = await aiohttp_client(app)
    await app[STATUS].wait_loaded()
    return client


@pytest.fixture
async def scoped(aiohttp_client, config, model_paths, scoped_tokens):
    app = build_app(config, model_paths, scoped_tokens)
    client = await aiohttp_client(app)
    await app[STATUS].wait_loaded()
    return client


async def test_health_needs_no_token(client):
    assert (await client.get("/health")).status == 200


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Missing Authorization header"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Invalid Authorization header"),
        ({"Authorization": "Bearer"}, 401, "Invalid Authorization header"),
        ({"Authorization": "Bearer wrong-token-0123456789"}, 403, "Invalid token"),
    ],
)
async def test_rejections_in_each_family_format(client, headers, status, message):
    response = await client.get("/device", headers=headers)
    assert response.status == status
    body = await response.json()
    assert body["code"] == (104901 if status == 401 else 104902) and body["data"] == {}
    assert message in body["msg"]
    response = await client.get("/feature", headers=headers)
    assert response.status == status
    assert (await response.json()) == {"success": False, "message": (await response.json())["message"]}
    assert message in (await response.json())["message"]
    response = await client.get("/plain", headers=headers)
    assert response.status == status and message in (await response.json())["error"]


async def test_valid_token_reaches_the_handler_with_its_principal(client):
    response = await client.get("/device", headers=AUTH)
    assert response.status == 200
    assert (await response.json())["data"]["who"] == "tester"


async def test_unexpected_error_is_500_with_a_request_id_and_no_internals(client):
    response = await client.get("/broken", headers=AUTH)
    assert response.status == 500
    body = await response.json()
    assert body["code"] == 104905 and response.headers["X-Request-Id"] in body["msg"]
    assert "boom" not in body["msg"] and "Traceback" not in body["msg"]


async def test_a_route_without_a_rule_needs_admin(client):
    """/device, /feature, /plain are in no rule: admin only (fail closed)."""
    assert "GET /device" in unscoped_routes(client.app)


def test_every_daemon_route_has_a_scope(config, model_paths, tokens):
    assert unscoped_routes(build_app(config, model_paths, tokens)) == []


async def test_read_only_token_reads_but_cannot_delete(scoped):
    assert (await scoped.get("/api/faces", headers=bearer(READ))).status == 200
    for method, path in [
        ("DELETE", "/api/faces/facesLib"),
        ("DELETE", "/api/faces/abcdefabcdefabcdefabcdef"),
        ("POST", "/api/faceGroups"),
    ]:
        response = await scoped.request(method, path, headers=bearer(READ), json={})
        body = await response.json()
        assert response.status == 403 and body["code"] == 104902, (method, path)
        assert "lacks the scope" in body["msg"]


async def test_privacy_token_cannot_touch_the_library(scoped):
    for method, path in [("GET", "/api/faces"), ("DELETE", "/api/faces/facesLib"), ("POST", "/api/faces")]:
        response = await scoped.request(method, path, headers=bearer(PRIVACY), json={})
        assert response.status == 403, (method, path)
    response = await scoped.post("/api/face/search", headers=bearer(PRIVACY), json={})
    assert response.status == 403


async def test_library_token_changes_the_library_but_cannot_reset_it(scoped):
    response = await scoped.post(
        "/api/faceGroups",
        headers=bearer(LIBRARY),
        json={"groupId": "1", "groupName": "staff", "groupScore": 80, "groupType": "x"},
    )
    assert (await response.json())["code"] == 0
    assert (await scoped.get("/api/faceGroups", headers=bearer(LIBRARY))).status == 200  # implies read
    response = await scoped.delete("/api/faces/facesLib", headers=bearer(LIBRARY))
    assert response.status == 403


async def test_admin_can_reset_the_library(scoped):
    import base64

    image = base64.b64encode((FACES / "obama.jpg").read_bytes()).decode()
    response = await scoped.post("/api/faces", headers=bearer(LIBRARY), json={"image": image})
    assert (await response.json())["code"] == 0
    response = await scoped.delete("/api/faces/facesLib", headers=bearer(ADMIN))
    assert response.status == 200 and (await response.json())["code"] == 0
    listing = await (await scoped.get("/api/faces", headers=bearer(READ))).json()
    assert listing["data"]["totalFaces"] == 0


async def test_recognize_and_stream_scopes_stay_in_their_lane(scoped):
    response = await scoped.post("/api/compare_features", headers=bearer(RECOGNIZE), json={})
    assert response.status == 400  # reached the handler: a bad body, not a 403
    response = await scoped.post("/api/compare_features", headers=bearer(STREAM), json={})
    assert response.status == 403 and (await response.json())["success"] is False
    response = await scoped.get("/api/stream/info", headers=bearer(READ))
    assert response.status == 503  # allowed (read may see stream info); no camera configured
    response = await scoped.post("/api/v1/blur-faces", headers=bearer(RECOGNIZE))
    assert response.status == 403 and "lacks the scope 'privacy'" in (await response.json())["error"]


async def test_non_utf8_credentials_are_refused_not_crashed(scoped):
    for header in (b"Bearer \xff\xfe-not-utf8-token-0123", b"Basic \xff\xfe\xfd"):
        for path in ("/api/faces", "/api/snapshot.jpg"):
            reader, writer = await asyncio.open_connection(scoped.host, scoped.port)
            writer.write(
                b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + header + b"\r\n"
                b"Connection: close\r\n\r\n"
            )
            await writer.drain()
            status_line = await reader.readline()
            writer.close()
            assert status_line.split()[1] in (b"401", b"403"), (header, path, status_line)
