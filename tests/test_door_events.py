"""The events store (real SQLite file): hooks inside the transaction, listeners after the commit,
filters, retention, durability across kill -9; the SSE broker's bounded queues; the door settings
store (validation with key paths, atomic persistence); the liveness policy registry."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daemon.config import PACKAGE_MODELS_DIR, BlinkConfig, CheckinConfig
from daemon.errors import ConfigError
from daemon.library.events import EventFilter, EventStore, NewEvent
from daemon.services.door_liveness import (
    POLICIES,
    LivenessSettings,
    PassiveTrackLiveness,
    blink_settings,
    build_policy,
)
from daemon.services.door_settings import DoorSettingsStore
from daemon.services.event_broker import EventBroker, TooManyClients
from daemon.vision.blink import BlinkLiveness

REPO = Path(__file__).resolve().parent.parent


def ev(
    decision: str = "granted", t: float = 1000.0, token: str | None = "tok", groups=("staff",)
) -> NewEvent:
    return NewEvent(t, "door", decision, "test", 1, token, "name" if token else None, list(groups), 90.0)


def test_insert_query_filters_and_snapshot(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    a = store.insert(ev("granted", 100.0, "a", ["staff"]), b"\xff\xd8jpeg")
    store.insert(ev("denied", 200.0, "b", ["default"]))
    store.insert(ev("unknown", 300.0, None, []))
    assert a["snapshot"] is True and a["faceToken"] == "a" and a["groups"] == ["staff"]
    assert set(a) == {
        "id",
        "time",
        "camera",
        "decision",
        "reason",
        "faceToken",
        "name",
        "groups",
        "score",
        "livenessScore",
        "quality",
        "trackId",
        "snapshot",
    }
    total, page = store.query(EventFilter(), 0, 10)
    assert total == 3 and [e["decision"] for e in page] == ["unknown", "denied", "granted"]
    assert store.query(EventFilter(decision="denied"), 0, 10)[1][0]["faceToken"] == "b"
    assert store.query(EventFilter(group="staff"), 0, 10)[0] == 1
    assert store.query(EventFilter(since=150, until=300), 0, 10)[0] == 1
    assert store.query(EventFilter(face_token="a"), 0, 10)[0] == 1
    assert store.query(EventFilter(), 1, 1)[1][0]["decision"] == "denied"
    assert store.snapshot(a["id"]) == b"\xff\xd8jpeg" and store.snapshot(a["id"] + 1) is None
    assert [e["id"] for e in store.after(a["id"], 10)] == [a["id"] + 1, a["id"] + 2]
    store.close()


def test_transaction_hook_commits_with_the_event_and_its_failure_rolls_it_back(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    seen: list[dict] = []

    def outbox(conn: sqlite3.Connection, event_id: int, event: dict) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS outbox (event_id INTEGER, body TEXT)")
        conn.execute("INSERT INTO outbox VALUES (?, ?)", (event_id, event["decision"]))
        if event["reason"] == "fail":
            raise RuntimeError("sink down")

    store.add_transaction_hook(outbox)
    store.add_listener(seen.append)
    first = store.insert(ev())
    with pytest.raises(RuntimeError):
        store.insert(NewEvent(1.0, "door", "denied", "fail", 2))
    assert store.count() == 1 and [e["id"] for e in seen] == [first["id"]]
    store.close()
    conn = sqlite3.connect(tmp_path / "events.sqlite3")
    assert conn.execute("SELECT event_id, body FROM outbox").fetchall() == [(first["id"], "granted")]


def test_failing_listener_does_not_undo_the_event(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    store.add_listener(lambda e: 1 / 0)
    store.insert(ev())
    assert store.count() == 1


def test_retention_by_age_and_count(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite3")
    for i in range(20):
        store.insert(ev(t=1000.0 + i), b"jpg")
    assert store.prune(keep_seconds=10.5, keep_count=1000, now=1020.0) == 10
    assert store.prune(keep_seconds=0, keep_count=4, now=1020.0) == 6
    total, page = store.query(EventFilter(), 0, 100)
    assert total == 4 and [e["time"] for e in page] == [1019.0, 1018.0, 1017.0, 1016.0]
    conn = sqlite3.connect(tmp_path / "events.sqlite3")
    assert conn.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 4  # deleted with their events


def test_committed_events_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys, time
        from daemon.library.events import EventStore, NewEvent
        store = EventStore({str(path)!r})
        for i in range(5):
            store.insert(NewEvent(float(i), "door", "granted", "r", i))
        print("committed", flush=True)
        store._conn.execute("BEGIN IMMEDIATE")
        store._conn.execute(
            "INSERT INTO events (time, camera, decision, track_id) VALUES (9, 'x', 'denied', 9)"
        )
        print("open", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
        assert proc.stdout.readline().strip() == "open"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    store = EventStore(path)
    assert store.count() == 5
    assert {e["decision"] for e in store.after(0, 100)} == {"granted"}


async def test_broker_drops_a_slow_client_and_keeps_the_others() -> None:
    broker = EventBroker(asyncio.get_running_loop(), max_clients=2, queue_size=8)
    slow, fast = broker.subscribe(), broker.subscribe()
    with pytest.raises(TooManyClients):
        broker.subscribe()
    got: list[int] = []
    for i in range(12):
        broker.publish_threadsafe({"id": i})
        await asyncio.sleep(0)
        got.append((await fast.queue.get())["id"])
    assert got == list(range(12)) and not fast.dropped
    assert slow.dropped and broker.dropped_total == 1
    broker.unsubscribe(slow)
    broker.subscribe()  # its place is free again


def test_settings_validated_like_the_file_persisted_and_refused_whole(tmp_path: Path) -> None:
    store = DoorSettingsStore(CheckinConfig(), tmp_path)
    new = store.update({"groups": ["staff"], "cooldown": 5})
    assert new.groups == ["staff"] and new.cooldown == 5.0
    with pytest.raises(ConfigError, match=r"checkin\.cooldown: -1(\.0)? is below the minimum 0"):
        store.update({"groups": ["x"], "cooldown": -1})
    with pytest.raises(ConfigError, match=r"checkin\.liveness"):
        store.update({"liveness": "magic"})
    with pytest.raises(ConfigError, match=r"unknown key checkin\.nope"):
        store.update({"nope": 1})
    with pytest.raises(ConfigError, match=r"checkin: groups: at most 64"):
        store.update({"groups": [f"g{i}" for i in range(65)]})
    with pytest.raises(ConfigError, match=r"checkin: groups: .* is not a groupId"):
        store.update({"groups": ["x" * 33]})
    with pytest.raises(ConfigError, match=r"checkin\.sse_queue: fixed"):
        store.update({"sse_queue": 10})
    assert store.current.groups == ["staff"]  # the last good settings
    again = DoorSettingsStore(CheckinConfig(), tmp_path).load()
    assert again.groups == ["staff"] and again.cooldown == 5.0
    (tmp_path / "door-settings.json").write_text('{"cooldown": "soon"}')
    broken = DoorSettingsStore(CheckinConfig(), tmp_path)
    assert broken.load() == CheckinConfig() and "checkin.cooldown" in (broken.load_error or "")
    assert store.reset() == CheckinConfig() and not (tmp_path / "door-settings.json").exists()


def test_liveness_registry_refuses_what_is_not_installed(engine, model_paths) -> None:
    from dataclasses import replace

    from daemon.vision.engine import VisionEngine

    assert set(POLICIES) == {"off", "passive", "passive+blink"}
    settings = LivenessSettings()
    no_model = VisionEngine(replace(model_paths, liveness=()), 1)  # liveness.enabled: false
    off = build_policy("off", no_model, settings)
    assert off.available and not off.required
    for name in ("passive", "passive+blink"):
        policy = build_policy(name, no_model, settings)
        assert policy.required and not policy.available
        assert policy.unavailable and policy.unavailable.startswith("liveness not available")
    assert build_policy("passive", engine, settings).available  # the shipped passive model

    class WithPassive:
        def liveness_score(self, image, face) -> float:
            return 80.0

    passive = build_policy("passive", WithPassive(), settings)
    assert passive.available and passive.new_track is not None
    unconfigured = build_policy("passive+blink", WithPassive(), settings)
    assert not unconfigured.available and "not configured" in (unconfigured.unavailable or "")
    with_blink = LivenessSettings(
        blink=blink_settings(BlinkConfig(), CheckinConfig()), models_dir=PACKAGE_MODELS_DIR
    )
    both = build_policy("passive+blink", WithPassive(), with_blink)
    assert both.available and isinstance(both.new_track(), BlinkLiveness)


def test_passive_track_liveness_decides_on_the_mean() -> None:
    check = PassiveTrackLiveness(LivenessSettings(min_score=50, frames=3, timeout=2.0))
    assert check.verdict(0.0).state == "pending"
    for i, score in enumerate((90.0, 20.0, 70.0)):
        check.observe(float(i), None, None, score)  # type: ignore[arg-type]
    assert check.verdict(3.0).state == "live"
    spoof = PassiveTrackLiveness(LivenessSettings(min_score=50, frames=3, timeout=2.0))
    spoof.observe(0.0, None, None, None)  # type: ignore[arg-type]
    assert spoof.verdict(1.0).state == "pending" and spoof.verdict(2.5).state == "spoof"
