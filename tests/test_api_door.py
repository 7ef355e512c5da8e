"""The door on a real server: a generated clip as the camera (file source, paced), the events API, SSE
(live and resumed), snapshots as configured, and the door settings over HTTP.

The live door must reach the same decisions as `facegate checkin-video` on the same clip.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from api_device_support import call
from conftest import AUTH
from door_clips import make_library, visits_paths, write_clip

from daemon.api.door import DOOR
from daemon.cli import main
from daemon.config import with_overrides
from daemon.library.events import NewEvent

DURATION = 9.5
CHECKIN = {"enabled": True, "groups": ["staff"], "decision_timeout": 2.0, "snapshots": "known"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("door_api") / "door.avi"
    return write_clip(path, visits_paths(DURATION, return_at=4.0, pair_at=6.2), DURATION, fps=10.0)


async def read_sse(response: Any, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """``count`` SSE events (id + data), skipping comments and the retry line."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    async def loop() -> None:
        nonlocal current
        while len(events) < count:
            line = (await response.content.readline()).decode()
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if line == "":
                if "data" in current:
                    events.append(current)
                current = {}
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line.startswith("event: "):
                current["event"] = line[7:]

    await asyncio.wait_for(loop(), timeout)
    return events


async def test_camera_door_events_match_checkin_video(
    make_client, config, clip: Path, engine, capsys
) -> None:
    tokens = make_library(config.database_path, engine)
    cfg = with_overrides(
        config, camera={"source": f"file:{clip}", "loop": False, "fps": 10.0}, checkin=CHECKIN
    )
    client = await make_client(cfg)
    # From event 0 on: what was committed before we connected comes from the store, the rest live.
    async with client.get("/api/events/stream", headers={**AUTH, "Last-Event-ID": "0"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        live = await read_sse(response, 3)
    assert [e["id"] for e in live] == sorted(e["id"] for e in live)
    assert all(e["event"] == "checkin" and e["data"]["id"] == e["id"] for e in live)
    decisions = {(e["data"]["decision"], e["data"]["faceToken"]) for e in live}
    assert decisions == {("granted", tokens["obama"]), ("denied", tokens["biden"]), ("unknown", None)}

    # The same clip through the offline tool: the same decisions.
    yaml_path = Path(config.server.state_dir).parent / "door.yaml"
    yaml_path.write_text(yaml.safe_dump({"checkin": CHECKIN}))
    assert (
        main(
            [
                "checkin-video",
                str(clip),
                "--state-dir",
                config.server.state_dir,
                "--config",
                str(yaml_path),
                "--json",
            ]
        )
        == 0
    )
    offline = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()][:-1]
    assert {(e["decision"], e["faceToken"]) for e in offline} == decisions

    body = await call(client, "GET", "/api/events")
    assert body["data"]["total"] == 3
    by_decision = {e["decision"]: e for e in body["data"]["events"]}
    granted, unknown = by_decision["granted"], by_decision["unknown"]
    assert granted["name"] == "obama" and granted["groups"] == ["staff"] and granted["camera"] == "door"
    assert granted["snapshot"] is True and unknown["snapshot"] is False  # "known": none for strangers
    assert by_decision["denied"]["snapshot"] is True
    filtered = await call(client, "GET", "/api/events?decision=granted&group=staff")
    assert [e["id"] for e in filtered["data"]["events"]] == [granted["id"]]
    token_page = await call(client, "GET", f"/api/events?faceToken={tokens['biden']}&pageSize=1")
    assert token_page["data"]["total"] == 1
    assert (await call(client, "GET", "/api/events?pageOffset=1&pageSize=1"))["data"]["total"] == 3

    snap = await client.get(f"/api/events/{granted['id']}/snapshot", headers=AUTH)
    assert snap.status == 200 and snap.content_type == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(await snap.read(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and min(image.shape[:2]) >= 100
    await call(client, "GET", f"/api/events/{unknown['id']}/snapshot", status=404, code=104903)

    # Resume after the first event: the two later ones, in order.
    first = live[0]["id"]
    async with client.get("/api/events/stream", headers={**AUTH, "Last-Event-ID": str(first)}) as response:
        resumed = await read_sse(response, 2)
    assert [e["id"] for e in resumed] == [e["id"] for e in live[1:]]

    health = await (await client.get("/health", headers=AUTH)).json()
    door = health["door"]
    assert door["enabled"] is True and door["events"]["granted"] == 1 and door["liveness"]["available"]
    # The running door's group cannot be deleted from under it.
    await call(client, "DELETE", "/api/faceGroups/staff", json={"deleteAllFace": 1}, status=400, code=104304)


async def test_bad_queries_are_400_in_the_device_envelope(make_client, config) -> None:
    client = await make_client(config)
    for query in ("decision=maybe", "since=yesterday", "pageSize=0", "until=nan"):
        await call(client, "GET", f"/api/events?{query}", status=400, code=104900)
    await call(client, "GET", "/api/events/abc/snapshot", status=400, code=104900)
    await call(client, "GET", "/api/events/99/snapshot", status=404, code=104903)
    response = await client.get("/api/events/stream", headers={**AUTH, "Last-Event-ID": "x"})
    assert response.status == 400
    assert (await call(client, "GET", "/api/events"))["data"] == {"total": 0, "events": []}


async def test_sse_is_live_capped_and_sends_heartbeats(make_client, config) -> None:
    cfg = with_overrides(config, checkin={"sse_max_clients": 1, "sse_heartbeat": 1.0})
    client = await make_client(cfg)
    store = client.app[DOOR].events
    async with client.get("/api/events/stream", headers=AUTH) as response:
        assert response.status == 200
        second = await client.get("/api/events/stream", headers=AUTH)
        assert second.status == 503 and (await second.json())["code"] == 104904
        line = b""
        while not line.startswith(b": heartbeat"):
            line = await asyncio.wait_for(response.content.readline(), 10)
        inserted = await asyncio.get_running_loop().run_in_executor(
            None, store.insert, NewEvent(1.0, "door", "unknown", "test", 7)
        )
        (event,) = await read_sse(response, 1, timeout=10)
        assert event["data"] == inserted


async def test_door_settings_over_http(make_client, config) -> None:
    client = await make_client(config)
    body = await call(client, "GET", "/api/door/settings")
    assert body["data"]["settings"]["groups"] == ["default"] and body["data"]["overridden"] == []
    bad = await call(
        client, "PUT", "/api/door/settings", json={"groups": ["a"], "cooldown": -5}, status=400, code=104900
    )
    assert "checkin.cooldown" in bad["msg"]
    bad = await call(client, "PUT", "/api/door/settings", json={"liveness": "magic"}, status=400, code=104900)
    assert "checkin.liveness" in bad["msg"]
    await call(client, "PUT", "/api/door/settings", json=["groups"], status=400, code=104900)
    assert (await call(client, "GET", "/api/door/settings"))["data"]["settings"]["groups"] == ["default"]
    good = await call(client, "PUT", "/api/door/settings", json={"groups": ["staff"], "cooldown": 12})
    assert good["data"]["settings"]["groups"] == ["staff"] and good["data"]["overridden"] == [
        "cooldown",
        "groups",
    ]
    saved = json.loads((Path(config.server.state_dir) / "door-settings.json").read_text())
    assert saved == {"groups": ["staff"], "cooldown": 12}
    assert client.app[DOOR].settings.cooldown == 12.0
    reset = await call(client, "DELETE", "/api/door/settings")
    assert reset["data"]["settings"]["groups"] == ["default"]
