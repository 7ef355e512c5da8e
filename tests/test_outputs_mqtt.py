"""MQTT against a real broker (Debian's mosquitto, started by the test on a free 127.0.0.1 port)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from outputs_support import (
    Broker,
    Subscriber,
    commit_event,
    make_event,
    mosquitto_binary,
    open_events_db,
    wait_until,
)
from outputs_support import broker as broker  # the fixture, by its name

from daemon.config import Config, with_overrides
from daemon.services.outputs import Outputs, build_outputs

DEVICE = "door1"
BASE = f"facegate/{DEVICE}"
REPO = Path(__file__).resolve().parent.parent


def mqtt_outputs(config: Config, port: int, **mqtt: object) -> Outputs:
    settings = {"host": "127.0.0.1", "port": port, "timeout": 5.0, **mqtt}
    overrides = {"device": DEVICE, "mqtt": settings, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5}
    return build_outputs(with_overrides(config, outputs=overrides))


async def test_events_discovery_and_availability_reach_the_broker(config, broker: Broker):
    sub = Subscriber(broker.port, "facegate/#", "homeassistant/#")
    outputs = mqtt_outputs(config, broker.port)
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        await wait_until(lambda: outputs.status()["mqtt"]["connected"] is True, "the connection")
        granted = commit_event(conn, make_event("granted", "Ada"), [outputs.enqueue], [outputs.on_committed])
        denied = commit_event(conn, make_event("unknown", None), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: len(sub.on(f"{BASE}/events")) == 2, "two events")
        await wait_until(lambda: len(sub.on(f"{BASE}/last_person")) == 2, "the last person twice")
        assert [json.loads(p) for p in sub.on(f"{BASE}/events")] == [granted, denied]
        assert json.loads(sub.on(f"{BASE}/last_person")[-1]) == denied
        assert sub.on(f"{BASE}/door") == ["OFF", "ON"]  # OFF at connect, ON for the one grant
        assert sub.on(f"{BASE}/availability") == ["online"]
        await wait_until(lambda: outputs.status()["mqtt"]["pending"] == 0, "an empty outbox")
        status = outputs.status()["mqtt"]
        assert status["delivered"] == 2
        assert status["last_error"] is None

        sensor = json.loads(sub.on("homeassistant/sensor/facegate_door1/last_person/config")[0])
        door = json.loads(sub.on("homeassistant/binary_sensor/facegate_door1/door/config")[0])
        for entity in (sensor, door):
            assert entity["availability_topic"] == f"{BASE}/availability"
            assert entity["device"]["identifiers"] == ["facegate_door1"]
        assert sensor["state_topic"] == f"{BASE}/last_person"
        assert sensor["json_attributes_topic"] == f"{BASE}/last_person"
        assert sensor["unique_id"] == "facegate_door1_last_person"
        assert door["state_topic"] == f"{BASE}/door"
        assert door["device_class"] == "door"
        assert (door["payload_on"], door["payload_off"]) == ("ON", "OFF")
        assert door["unique_id"] == "facegate_door1_door"

        # A Home Assistant started later still finds everything: discovery, availability and state
        # are retained (events are not).
        late = Subscriber(broker.port, "facegate/#", "homeassistant/#")
        await wait_until(lambda: len(late.messages) >= 5, "the retained messages")
        retained = {topic for topic, _, retain in late.messages if retain}
        assert retained == {
            "homeassistant/sensor/facegate_door1/last_person/config",
            "homeassistant/binary_sensor/facegate_door1/door/config",
            f"{BASE}/availability",
            f"{BASE}/last_person",
            f"{BASE}/door",
        }
        assert late.on(f"{BASE}/events") == []
        late.close()
    finally:
        await outputs.close()
        conn.close()
    await wait_until(lambda: sub.on(f"{BASE}/availability")[-1:] == ["offline"], "offline at a clean stop")
    sub.close()


async def test_discovery_can_be_turned_off(config, broker: Broker):
    sub = Subscriber(broker.port, "facegate/#", "homeassistant/#")
    outputs = mqtt_outputs(config, broker.port, discovery=False)
    await outputs.start()
    try:
        await wait_until(lambda: sub.on(f"{BASE}/availability") == ["online"], "online")
    finally:
        await outputs.close()
    await wait_until(lambda: sub.on(f"{BASE}/availability")[-1:] == ["offline"], "offline")
    assert [t for t, _, _ in sub.messages if t.startswith("homeassistant/")] == []
    sub.close()


KILLED_DAEMON = """
import asyncio, os, signal, sys
from daemon.services.sinks.mqtt import MqttSink

async def main():
    sink = MqttSink("mqtt", host="127.0.0.1", port=int(sys.argv[1]), device="door1", timeout=5)
    await sink.start(lambda: None)
    while not sink.connected:
        await asyncio.sleep(0.02)
    print("connected", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


def test_the_last_will_says_offline_when_the_daemon_dies(broker: Broker):
    sub = Subscriber(broker.port, f"{BASE}/availability")
    result = subprocess.run(
        [sys.executable, "-c", KILLED_DAEMON, str(broker.port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == -9, result.stderr.decode()
    assert result.stdout == b"connected\n"
    deadline = time.monotonic() + 20
    while sub.on(f"{BASE}/availability") != ["online", "offline"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sub.on(f"{BASE}/availability") == ["online", "offline"]
    sub.close()


async def test_events_committed_while_the_broker_is_down_arrive_after_it_returns(config, broker: Broker):
    sub = Subscriber(broker.port, f"{BASE}/events", persistent=True)  # its session survives the restart
    broker.stop()
    outputs = mqtt_outputs(config, broker.port)
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        sent = [
            commit_event(conn, make_event(name=n), [outputs.enqueue], [outputs.on_committed]) for n in "ABC"
        ]

        def down_with_three_pending() -> bool:
            status = outputs.status()["mqtt"]
            return status["pending"] == 3 and status["last_error"] is not None

        await wait_until(down_with_three_pending, "three pending events")
        status = outputs.status()["mqtt"]
        assert status["connected"] is False
        assert "cannot connect" in status["last_error"]
        broker.start()
        await wait_until(lambda: outputs.status()["mqtt"]["pending"] == 0, "delivery after reconnecting")
        await wait_until(lambda: len(sub.on(f"{BASE}/events")) >= 3, "the events at the subscriber")
    finally:
        await outputs.close()
        conn.close()
    received = [json.loads(p)["id"] for p in sub.on(f"{BASE}/events")]
    assert sorted(set(received)) == [e["id"] for e in sent]  # at least once each, nothing else
    assert list(dict.fromkeys(received)) == [e["id"] for e in sent]  # first arrivals in commit order
    sub.close()


async def test_a_broker_with_passwords(config, tmp_path):
    binary = mosquitto_binary()
    if binary is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed (scripts/test installs Debian's mosquitto when run as root)")
    secured = Broker(binary, tmp_path, users={"facegate": "door-pass", "watcher": "watch-pass"})
    secured.start()
    try:
        sub = Subscriber(secured.port, f"{BASE}/#", auth=("watcher", "watch-pass"))
        password = tmp_path / "mqtt_password"
        password.write_text("door-pass\n")
        outputs = mqtt_outputs(config, secured.port, username="facegate", password_file=str(password))
        await outputs.start()
        try:
            await wait_until(lambda: sub.on(f"{BASE}/availability") == ["online"], "online")
        finally:
            await outputs.close()

        password.write_text("wrong\n")
        refused = mqtt_outputs(config, secured.port, username="facegate", password_file=str(password))
        await refused.start()
        try:
            await wait_until(lambda: refused.status()["mqtt"]["last_error"] is not None, "the refusal")
            status = refused.status()["mqtt"]
            assert status["connected"] is False
            assert "refused" in status["last_error"]
        finally:
            await refused.close()
        sub.close()
    finally:
        secured.stop()
