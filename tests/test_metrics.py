"""GET /metrics on a real server with real models: parsed with prometheus-client's own parser, the
counters move with the requests made, routes are labelled by their pattern, auth failures and
inference times are counted, the camera pipeline's frames and drops are exported."""

from __future__ import annotations

import asyncio
import base64

import pytest
from clip_maker import make_clip
from conftest import AUTH, FACES
from prometheus_client.parser import text_string_to_metric_families

from daemon.config import with_overrides


async def scrape(client, headers=AUTH) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def requests(samples, route: str, status: str, method: str = "GET") -> float:
    return value(samples, "facegate_http_requests_total", method=method, route=route, status=status)


async def test_requests_counted_by_route_pattern_and_status(make_client, config) -> None:
    client = await make_client(config)
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get("/api/faceGroups", headers=AUTH)).status == 200
    for token in ("AAAAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBB"):
        response = await client.get(f"/api/faces/faceToken/{token}", headers=AUTH)
        assert response.status == 404
    assert (await client.get("/no/such/route/12345", headers=AUTH)).status == 404
    after = await scrape(client)

    assert requests(after, "/api/faceGroups", "200") - requests(before, "/api/faceGroups", "200") == 3
    assert requests(after, "/api/faces/faceToken/{faceToken}", "404") == 2
    assert requests(after, "unmatched", "404") == 1
    # Bounded labels: no raw path (a faceToken, the unknown route) ever becomes a label value.
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(r and ("AAAA" in r or "12345" in r) for r in routes), routes
    # Latency histogram per route pattern: count equals the requests, buckets are cumulative.
    count = value(
        after, "facegate_http_request_duration_seconds_count", method="GET", route="/api/faceGroups"
    )
    assert count == requests(after, "/api/faceGroups", "200")
    inf = value(
        after,
        "facegate_http_request_duration_seconds_bucket",
        method="GET",
        route="/api/faceGroups",
        le="+Inf",
    )
    assert inf == count
    # The scrape itself is counted (the first scrape before, and not yet the second).
    assert requests(after, "/metrics", "200") >= 1


async def test_unknown_methods_do_not_grow_labels(make_client, config) -> None:
    client = await make_client(config)
    for method in ("PROPFIND", "MKCOL"):
        response = await client.request(method, "/api/faceGroups", headers=AUTH)
        assert response.status == 405
    after = await scrape(client)
    methods = {
        dict(labels).get("method") for (name, labels) in after if name == "facegate_http_requests_total"
    }
    assert "PROPFIND" not in methods and "MKCOL" not in methods
    assert value(after, "facegate_http_requests_total", method="other", route="unmatched", status="405") == 2


async def test_auth_failures_counted_and_metrics_need_a_token(make_client, config) -> None:
    client = await make_client(config)
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/api/faceGroups", headers={"Authorization": "Basic abc"})).status == 401
    assert (
        await client.get("/api/faceGroups", headers={"Authorization": "Bearer wrong-token-000000"})
    ).status == 403
    samples = await scrape(client)
    assert value(samples, "facegate_auth_failures_total", reason="unauthenticated") == 2
    assert value(samples, "facegate_auth_failures_total", reason="invalid_token") == 1
    assert requests(samples, "/metrics", "401") == 1


async def test_public_on_loopback_serves_metrics_without_a_token(make_client, config) -> None:
    client = await make_client(with_overrides(config, metrics={"public_on_loopback": True}))
    await scrape(client, headers={})
    # Everything else still needs the token.
    assert (await client.get("/api/faceGroups")).status == 401


async def test_public_on_loopback_has_no_effect_on_other_addresses(config) -> None:
    from daemon.app import public_paths

    cfg = with_overrides(config, server={"host": "0.0.0.0"}, metrics={"public_on_loopback": True})
    assert "/metrics" not in public_paths(cfg)
    assert "/metrics" in public_paths(with_overrides(config, metrics={"public_on_loopback": True}))


async def test_disabled_metrics_serve_nothing(make_client, config) -> None:
    client = await make_client(with_overrides(config, metrics={"enabled": False}))
    assert (await client.get("/metrics", headers=AUTH)).status == 404
    assert (await client.get("/health")).status == 200


async def test_inference_pool_and_library_metrics(make_client, config) -> None:
    client = await make_client(config)
    before = await scrape(client)
    assert value(before, "facegate_pool_workers") == config.workers.count
    assert value(before, "facegate_pool_max_pending") == config.workers.max_pending
    assert value(before, "facegate_library_faces") == 0
    image = "data:image/jpeg;base64," + base64.b64encode((FACES / "obama.jpg").read_bytes()).decode()
    response = await client.post("/api/faces", json={"image": image}, headers=AUTH)
    assert (await response.json())["code"] == 0
    after = await scrape(client)
    assert value(after, "facegate_library_faces") == 1
    assert value(after, "facegate_pool_jobs_total") > value(before, "facegate_pool_jobs_total")
    for model in ("blazeface_short", "embedding_int8"):
        runs = value(after, "facegate_inference_duration_seconds_count", model=model)
        assert runs > value(before, "facegate_inference_duration_seconds_count", model=model), model
        assert value(after, "facegate_inference_duration_seconds_sum", model=model) > 0
    assert value(after, "facegate_disk_free_bytes") > 0
    assert value(after, "facegate_pool_rejected_total") == 0
    # No camera configured: no camera metrics.
    assert not any(name.startswith("facegate_camera") for name, _ in after)


async def test_every_app_has_its_own_registry(make_client, config, tmp_path) -> None:
    first = await make_client(config)
    second = await make_client(with_overrides(config, server={"state_dir": str(tmp_path / "other")}))
    for _ in range(2):
        await first.get("/api/faceGroups", headers=AUTH)
    assert requests(await scrape(first), "/api/faceGroups", "200") == 2
    assert requests(await scrape(second), "/api/faceGroups", "200") == 0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory):
    return make_clip(tmp_path_factory.mktemp("metrics") / "faces.avi", size=(320, 240), frames=20)


async def test_camera_metrics(make_client, config, clip) -> None:
    cfg = with_overrides(config, camera={"source": f"file:{clip.path}", "loop": True, "fps": 25.0})
    client = await make_client(cfg)
    samples: dict = {}
    for _ in range(100):  # frames flow within a second or two
        samples = await scrape(client)
        if value(samples, "facegate_camera_frames_total", stage="published") >= 5:
            break
        await asyncio.sleep(0.1)
    assert value(samples, "facegate_camera_frames_total", stage="captured") >= 5
    assert value(samples, "facegate_camera_frames_total", stage="published") >= 5
    assert value(samples, "facegate_camera_state", state="running") == 1
    assert value(samples, "facegate_camera_fps", stage="capture") > 0
    for reason in ("capture", "queue", "unsafe", "failsafe_skipped"):
        assert ("facegate_camera_dropped_frames_total", (("reason", reason),)) in samples
    runs = value(samples, "facegate_inference_duration_seconds_count", model=cfg.stream.detector)
    assert runs > 0, cfg.stream.detector


async def test_a_metrics_token_reads_metrics_and_nothing_else(make_client, config) -> None:
    from daemon.services.tokens import ADMIN, METRICS, READ, TokenRegistry

    scraper, reader = "scraper-token-0123456789abcdef", "reader-token-0123456789abcdef"
    registry = TokenRegistry.of(
        [("prometheus", scraper, [METRICS]), ("reader", reader, [READ]), ("tester", "t" * 26, [ADMIN])]
    )
    client = await make_client(config, tokens=registry)
    samples = await scrape(client, headers={"Authorization": f"Bearer {scraper}"})
    for path in ("/api/faces", "/api/faceGroups", "/api/config"):
        assert (await client.get(path, headers={"Authorization": f"Bearer {scraper}"})).status == 403, path
    # A token for face data cannot read the metrics (least privilege both ways).
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})).status == 403
    after = await scrape(client, headers={"Authorization": f"Bearer {scraper}"})
    assert value(after, "facegate_auth_failures_total", reason="forbidden") == 4
    assert value(samples, "facegate_auth_failures_total", reason="forbidden") == 0
