"""Stream credentials for clients that cannot send a Bearer header (browser <img>, Home Assistant).

A real server whose camera is a looping clip: a signed URL minted by an authenticated call gives the
snapshot / MJPEG with no header, for its route only, until it expires; HTTP Basic works with a
stream-only token and nothing else.
"""

from __future__ import annotations

import base64
import time

import aiohttp
import pytest
from clip_maker import Clip, make_clip

from daemon.api.auth import LINKS
from daemon.config import with_overrides
from daemon.services.tokens import ADMIN, PRIVACY, STREAM, TokenRegistry

STREAM_TOKEN = "ha-camera-token-5d4c3b2a1f0e9d8c"
ADMIN_TOKEN = "admin-token-0f1e2d3c4b5a69788"
PRIVACY_TOKEN = "privacy-token-abcdef0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(name: str, token: str) -> dict[str, str]:
    """What Home Assistant's mjpeg camera sends with username/password (authentication: basic)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("stream_access") / "faces.avi", size=(320, 180), frames=20)


@pytest.fixture
async def client(make_client, config, clip: Clip):
    registry = TokenRegistry.of(
        [("ha", STREAM_TOKEN, [STREAM]), ("root", ADMIN_TOKEN, [ADMIN]), ("blur", PRIVACY_TOKEN, [PRIVACY])]
    )
    cfg = with_overrides(config, camera={"source": f"file:{clip.path}", "loop": True, "fps": 25.0})
    return await make_client(cfg, tokens=registry)


async def mint(client, path: str, token: str = STREAM_TOKEN, seconds: int = 60) -> aiohttp.ClientResponse:
    return await client.post(
        "/api/stream/links", json={"path": path, "seconds": seconds}, headers=bearer(token)
    )


async def test_signed_url_gives_the_snapshot_without_a_header(client):
    response = await mint(client, "/api/snapshot.jpg")
    assert response.status == 200
    body = await response.json()
    assert body["url"].startswith("/api/snapshot.jpg?") and body["expires_at"].endswith("Z")
    snapshot = await client.get(body["url"])
    assert snapshot.status == 200 and snapshot.content_type == "image/jpeg"
    assert (await snapshot.read())[:2] == b"\xff\xd8"
    assert (await client.get("/api/snapshot.jpg")).status == 401  # the bare route still needs credentials


async def test_signed_url_for_the_mjpeg_stream(client):
    url = (await (await mint(client, "/api/stream.mjpg")).json())["url"]
    async with client.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        assert b"\xff\xd8" in await response.content.read(4096)


async def test_signed_url_is_bound_to_its_route(client):
    url = (await (await mint(client, "/api/snapshot.jpg")).json())["url"]
    query = url.split("?", 1)[1]
    response = await client.get(f"/api/stream.mjpg?{query}")
    assert response.status == 403 and "invalid signature" in (await response.json())["error"]
    response = await client.get(f"/api/faces?{query}")  # not a stream route: the link is no credential
    assert response.status == 401
    tampered = url.replace("by=ha", "by=root")
    assert (await client.get(tampered)).status == 403


async def test_expired_signed_url_is_refused(client):
    links = client.app[LINKS]
    links.clock = lambda: time.time() - 3600  # minted an hour ago, valid 60 s
    try:
        url, _ = links.sign("/api/snapshot.jpg", "ha", 60)
    finally:
        links.clock = time.time
    response = await client.get(url)
    assert response.status == 403 and "expired" in (await response.json())["error"]


async def test_only_stream_tokens_mint_links_and_revoked_principals_are_refused(client):
    assert (await mint(client, "/api/snapshot.jpg", token=PRIVACY_TOKEN)).status == 403
    assert (await mint(client, "/api/faces")).status == 400  # only stream routes can be signed
    url, _ = client.app[LINKS].sign("/api/snapshot.jpg", "someone-revoked", 60)
    response = await client.get(url)
    assert response.status == 403 and "revoked" in (await response.json())["error"]


async def test_basic_auth_with_a_stream_only_token(client):
    auth = basic("ha", STREAM_TOKEN)
    response = await client.get("/api/snapshot.jpg", headers=auth)
    assert response.status == 200 and response.content_type == "image/jpeg"
    response = await client.get("/api/snapshot.jpg", headers=basic("other", STREAM_TOKEN))
    assert response.status == 403  # the user name must be the token's name
    response = await client.get("/api/snapshot.jpg", headers=basic("root", ADMIN_TOKEN))
    assert response.status == 403 and "stream-only" in (await response.json())["error"]
    response = await client.get("/api/faces", headers=auth)  # Basic is only for the stream routes
    assert response.status == 401
    response = await client.get("/api/snapshot.jpg")
    assert response.status == 401 and "Basic" in response.headers["WWW-Authenticate"]
