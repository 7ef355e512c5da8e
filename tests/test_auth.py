"""Token auth answers in each API family's own error format."""

from __future__ import annotations

import os
import stat

import pytest
from aiohttp import web
from conftest import AUTH

from daemon.api.auth import create_token_file, load_or_create_tokens, parse_tokens
from daemon.api.families import DEVICE, FEATURE, speaks
from daemon.app import build_app
from daemon.appkeys import PRINCIPAL, STATUS
from daemon.errors import ConfigError


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


def test_token_file_created_on_loopback_only(tmp_path):
    path = tmp_path / "state" / "tokens"
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0 without a token file"):
        load_or_create_tokens(path, "0.0.0.0")
    assert not path.exists()
    tokens = load_or_create_tokens(path, "127.0.0.1")
    assert len(tokens) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_tokens(path, "0.0.0.0").tokens == tokens.tokens  # an existing file is used as is


def test_example_and_short_tokens_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="too short or an example"):
        parse_tokens("changeme\n", "f")
    with pytest.raises(ConfigError, match="f:2"):
        parse_tokens("# comment\nshort\n", "f")
    tokens = parse_tokens("# c\n\nalice:aaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbb\n", "f")
    assert tokens.principal_for("aaaaaaaaaaaaaaaaaaaa") == "alice"
    assert tokens.principal_for("bbbbbbbbbbbbbbbbbbbb") == "token2"
    assert tokens.principal_for("aaaaaaaaaaaaaaaaaaab") is None


def test_create_token_file_never_overwrites(tmp_path):
    create_token_file(tmp_path / "tokens")
    with pytest.raises(FileExistsError):
        create_token_file(tmp_path / "tokens")
