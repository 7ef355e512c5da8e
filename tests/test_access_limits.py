"""Rate limits, the IP allow-list, /health without a token, and CORS, on a real server on 127.0.0.1."""

from __future__ import annotations

import aiohttp
import pytest
from conftest import AUTH, FACES, TEST_TOKEN

from daemon.config import with_overrides
from daemon.services.ratelimit import FailureLimiter, TokenBucket, client_key

WRONG = {"Authorization": "Bearer wrong-token-0123456789abcdef"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_failed_authentications_get_429_with_retry_after(make_client, config):
    client = await make_client(with_overrides(config, auth={"max_failures": 5, "failure_window": 60}))
    for _ in range(5):
        response = await client.get("/api/faces", headers=WRONG)
        assert response.status == 403
    response = await client.get("/api/faces", headers=WRONG)
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    body = await response.json()
    assert body["code"] == 104909 and "too many failed authentications" in body["msg"]
    # while blocked even the right token is not checked (no oracle for a guesser), in every family
    response = await client.get("/api/faces", headers=AUTH)
    assert response.status == 429
    response = await client.post("/api/compare_features", headers=AUTH, json={})
    assert response.status == 429 and (await response.json())["success"] is False
    response = await client.post("/detect", headers=AUTH)
    assert response.status == 429 and "error" in await response.json()
    assert (await client.get("/health")).status == 200  # anonymous liveness still answers


def test_failure_window_ends_and_the_client_table_is_bounded():
    clock = Clock()
    limiter = FailureLimiter(max_failures=3, window=60, max_clients=16, clock=clock)
    for _ in range(3):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    clock.now += 59
    assert limiter.retry_after("10.0.0.1") == 1
    clock.now += 1
    assert limiter.retry_after("10.0.0.1") is None
    for n in range(100):
        limiter.failed(f"10.1.0.{n}")
    assert len(limiter.table) == 16


def test_token_bucket_and_client_keys():
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=2, max_clients=16, clock=clock)
    assert bucket.take("a") is None and bucket.take("a") is None
    assert bucket.take("a") == pytest.approx(1.0)
    assert bucket.take("b") is None  # per client
    clock.now += 1
    assert bucket.take("a") is None
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1"


async def test_expensive_routes_are_rate_limited_per_client(make_client, config):
    cfg = with_overrides(config, auth={"expensive_per_minute": 1, "expensive_burst": 2})
    client = await make_client(cfg)
    image = (FACES / "obama.jpg").read_bytes()

    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("image", image, filename="a.jpg")
        return data

    for _ in range(2):
        assert (await client.post("/detect", data=form(), headers=AUTH)).status == 200
    response = await client.post("/detect", data=form(), headers=AUTH)
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert (await client.get("/api/faces", headers=AUTH)).status == 200  # cheap routes are not limited


async def test_allow_list_refuses_other_addresses(aiohttp_client, config, model_paths, tokens):
    """Requests seen from 203.0.113.7 (a real request whose transport peer is rewritten by a middleware
    in front, as a reverse proxy's address would be) are refused; the allowed network passes."""
    from aiohttp import web

    from daemon.app import build_app
    from daemon.appkeys import STATUS

    cfg = with_overrides(config, auth={"allow_from": ["192.0.2.0/24"]})
    app = build_app(cfg, model_paths, tokens)

    @web.middleware
    async def from_header(request, handler):
        return await handler(request.clone(remote=request.headers.get("X-Test-Peer", request.remote)))

    app.middlewares.insert(0, from_header)
    client = await aiohttp_client(app)
    await app[STATUS].wait_loaded()
    response = await client.get("/api/faces", headers={**AUTH, "X-Test-Peer": "203.0.113.7"})
    assert response.status == 403 and "client address not allowed" in (await response.json())["msg"]
    response = await client.get("/health", headers={"X-Test-Peer": "203.0.113.7"})
    assert response.status == 403
    response = await client.get("/api/faces", headers={**AUTH, "X-Test-Peer": "192.0.2.44"})
    assert response.status == 200
    assert (await client.get("/api/faces", headers=AUTH)).status == 200  # loopback is always allowed


async def test_health_without_token_is_liveness_only(make_client, config):
    client = await make_client(config)
    response = await client.get("/health")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    response = await client.get("/health", headers=WRONG)
    assert await response.json() == {"status": "ok"}
    details = await (await client.get("/health", headers=AUTH)).json()
    assert details["status"] == "ok" and "library" in details and "workers" in details


CORS = {"allowed_origins": ["https://oa.example.com"], "max_age": 300}


async def test_cors_preflight_and_headers(make_client, config):
    client = await make_client(with_overrides(config, cors=CORS))
    preflight = {
        "Origin": "https://oa.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    response = await client.options("/api/v1/blur-faces", headers=preflight)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://oa.example.com"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Max-Age"] == "300"
    assert "Access-Control-Allow-Credentials" not in response.headers
    response = await client.options(
        "/api/v1/blur-faces", headers={**preflight, "Origin": "https://evil.example"}
    )
    assert response.status == 403 and "Access-Control-Allow-Origin" not in response.headers

    form = aiohttp.FormData()
    form.add_field("image", (FACES / "obama.jpg").read_bytes(), filename="a.jpg")
    response = await client.post(
        "/api/v1/blur-faces", data=form, headers={**AUTH, "Origin": "https://oa.example.com"}
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://oa.example.com"
    assert "Origin" in response.headers["Vary"]
    assert "X-Faces-Count" in response.headers["Access-Control-Expose-Headers"]
    response = await client.post("/detect", headers={"Origin": "https://oa.example.com"})  # no token
    assert (
        response.status == 401 and response.headers["Access-Control-Allow-Origin"] == "https://oa.example.com"
    )
    response = await client.get("/api/faces", headers={**AUTH, "Origin": "https://oa.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers  # only the blur API is offered to pages


def test_cors_wildcard_with_credentials_is_refused(config):
    from daemon.errors import ConfigError

    with pytest.raises(ConfigError, match="wildcard"):
        with_overrides(config, cors={"allowed_origins": ["*"], "allow_credentials": True})


async def test_cors_wildcard_without_credentials(make_client, config):
    client = await make_client(with_overrides(config, cors={"allowed_origins": ["*"]}))
    headers = {"Origin": "https://any.example", "Access-Control-Request-Method": "POST"}
    response = await client.options("/detect", headers=headers)
    assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"
    assert TEST_TOKEN not in str(response.headers)


async def test_failed_sign_ins_on_the_admin_page_share_the_api_limit(make_client, config):
    # The page's sign-in form is another way to guess tokens: its failures count against the same
    # per-address limit as the API's, in both directions.
    client = await make_client(with_overrides(config, auth={"max_failures": 3, "failure_window": 60}))
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    for _ in range(2):
        response = await client.post("/ui/login", data={"token": "wrong-token-0123456789ab"}, headers=origin)
        assert response.status == 403
    assert (await client.get("/api/faces", headers=WRONG)).status == 403  # the third failure
    response = await client.post(
        "/ui/login", data={"token": TEST_TOKEN}, headers=origin, allow_redirects=False
    )
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in await response.text()
    assert (await client.get("/api/faces", headers=AUTH)).status == 429
