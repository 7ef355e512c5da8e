"""Webhooks from the outbox against a real aiohttp receiver on 127.0.0.1 that fails on purpose."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from outputs_support import (
    EVENTS_DDL,
    MiniEventStore,
    Receiver,
    commit_event,
    free_port,
    make_event,
    open_events_db,
    wait_until,
)

from daemon.config import Config, with_overrides
from daemon.services.outputs import Outputs, build_outputs
from daemon.services.sinks.base import OutputError
from daemon.services.sinks.webhook import verify

SECRET = b"correct horse battery staple"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "hook.secret"
    path.write_bytes(SECRET + b"\n")
    return path


def outputs_for(config: Config, url: str, secret_file: Path, **outputs: object) -> Outputs:
    hook = {"url": url, "secret_file": str(secret_file), "name": "test", "timeout": 2.0}
    hook.update(outputs.pop("hook", {}))  # type: ignore[arg-type]
    settings = {"webhooks": [hook], "retry_initial_seconds": 0.02, "retry_max_seconds": 0.2, **outputs}
    return build_outputs(with_overrides(config, outputs=settings))


def pending_rows(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM outbox ORDER BY id")]


async def test_events_arrive_signed_in_commit_order(config, receiver, secret_file):
    outputs = outputs_for(config, receiver.url, secret_file)
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        sent = [
            commit_event(conn, make_event(name=n), [outputs.enqueue], [outputs.on_committed]) for n in "ABC"
        ]
        await wait_until(lambda: len(receiver.accepted) == 3, "three deliveries")
        assert receiver.accepted_ids() == [e["id"] for e in sent]
        for request, event in zip(receiver.accepted, sent, strict=True):
            headers, body = request["headers"], request["body"]
            assert json.loads(body) == event  # the contract's JSON, id included
            assert headers["Content-Type"] == "application/json"
            assert headers["X-Facegate-Event-Id"] == str(event["id"])
            assert headers["X-Facegate-Attempt"] == "1"
            timestamp = headers["X-Facegate-Timestamp"]
            assert abs(int(timestamp) - time.time()) < 300
            # The documented recipe, computed independently of the daemon's code.
            expected = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            assert headers["X-Facegate-Signature"] == f"v1={expected}"
            assert verify(SECRET, timestamp, body, headers["X-Facegate-Signature"])
            assert not verify(b"another secret", timestamp, body, headers["X-Facegate-Signature"])
            assert not verify(SECRET, timestamp, body + b" ", headers["X-Facegate-Signature"])
        await wait_until(lambda: outputs.status()["webhook:test"]["pending"] == 0, "an empty outbox")
        status = outputs.status()["webhook:test"]
        assert status["kind"] == "webhook"
        assert status["connected"] is True
        assert status["delivered"] == 3
        assert status["dropped"] == 0
        assert status["last_error"] is None
    finally:
        await outputs.close()
        conn.close()
    assert pending_rows(outputs.database) == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_the_documented_recipes_verify_a_real_delivery(config, receiver, secret_file, tmp_path):
    outputs = outputs_for(config, receiver.url, secret_file)
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        commit_event(conn, make_event(name="Zoë"), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: len(receiver.accepted) == 1, "the delivery")
    finally:
        await outputs.close()
        conn.close()
    [request] = receiver.accepted
    (tmp_path / "body.json").write_bytes(request["body"])
    api = (REPO / "docs" / "API.md").read_text()
    recipe = api.split("Shell (OpenSSL)")[1].split("```sh\n")[1].split("```")[0]
    recipe = recipe.replace("/var/lib/facegate/webhook_secret", str(secret_file))

    def run(signature: str) -> str:
        env = {"PATH": os.environ["PATH"], "TS": request["headers"]["X-Facegate-Timestamp"], "SIG": signature}
        done = subprocess.run(["sh", "-c", recipe], cwd=tmp_path, env=env, capture_output=True, timeout=30)
        return done.stdout.decode().strip()

    assert run(request["headers"]["X-Facegate-Signature"]) == "valid"
    assert run("v1=" + "0" * 64) == "INVALID"

    # The Python recipe of the same section, as printed.
    python = api.split("event id. Python:")[1].split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(python.replace("/var/lib/facegate/webhook_secret", str(secret_file)), namespace)
    assert namespace["secret"] == SECRET
    assert namespace["verify"](SECRET, request["headers"], request["body"])
    assert not namespace["verify"](SECRET, request["headers"], request["body"] + b"\n")


async def test_receiver_failures_are_retried_with_backoff_until_delivered(config, receiver, secret_file):
    receiver.script = [500, 503, 429, 502]
    outputs = outputs_for(config, receiver.url, secret_file)
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        first = commit_event(conn, make_event(name="A"), [outputs.enqueue], [outputs.on_committed])
        second = commit_event(conn, make_event(name="B"), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: len(receiver.accepted) == 2, "both events")
    finally:
        await outputs.close()
        conn.close()
    assert receiver.accepted_ids() == [first["id"], second["id"]]
    # The first event went through four failures before it was accepted; the second waited its turn.
    attempts = [
        (json.loads(r["body"])["id"], r["headers"]["X-Facegate-Attempt"], r["status"])
        for r in receiver.requests
    ]
    assert attempts == [
        (first["id"], "1", 500),
        (first["id"], "2", 503),
        (first["id"], "3", 429),
        (first["id"], "4", 502),
        (first["id"], "5", 200),
        (second["id"], "1", 200),
    ]


async def test_undelivered_events_are_delivered_by_a_new_dispatcher_after_a_restart(config, secret_file):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"  # nothing listens there yet
    outputs = outputs_for(config, url, secret_file)
    conn = open_events_db(outputs.database)
    await outputs.start()
    sent = [commit_event(conn, make_event(name=n), [outputs.enqueue], [outputs.on_committed]) for n in "ABC"]

    def failed_with_three_pending() -> bool:
        status = outputs.status()["webhook:test"]
        return status["last_error"] is not None and status["pending"] == 3

    await wait_until(failed_with_three_pending, "a failed attempt")
    status = outputs.status()["webhook:test"]
    assert status["connected"] is False
    assert status["pending"] == 3
    await outputs.close()
    assert pending_rows(outputs.database) == [e["id"] for e in sent]

    receiver = await Receiver().start(port)
    restarted = outputs_for(config, url, secret_file)
    await restarted.start()
    try:
        await wait_until(lambda: len(receiver.accepted) == 3, "delivery after the restart")
        await wait_until(lambda: restarted.status()["webhook:test"]["pending"] == 0, "an empty outbox")
    finally:
        await restarted.close()
        await receiver.stop()
        conn.close()
    assert receiver.accepted_ids() == [e["id"] for e in sent]  # each once: nothing was cut mid-delivery
    assert [json.loads(r["body"]) for r in receiver.accepted] == sent


async def test_a_hung_receiver_times_out_and_never_holds_up_commits(config, receiver, secret_file):
    receiver.script = ["hang"]
    outputs = outputs_for(config, receiver.url, secret_file, hook={"timeout": 0.3})
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        first = commit_event(conn, make_event(name="A"), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: len(receiver.requests) == 1, "the first delivery to hang")
        # While the receiver holds the delivery open, recognition keeps committing events.
        more = [
            commit_event(conn, make_event(name="B"), [outputs.enqueue], [outputs.on_committed])
            for _ in range(20)
        ]
        assert len(pending_rows(outputs.database)) >= 20
        await wait_until(lambda: len(receiver.accepted) == 21, "every event once the receiver answers")
    finally:
        await outputs.close()
        conn.close()
    assert receiver.accepted_ids() == [first["id"]] + [e["id"] for e in more]
    assert receiver.accepted[0]["headers"]["X-Facegate-Attempt"] == "2"  # the first attempt timed out


async def test_an_event_refused_for_good_is_dropped_and_counted(config, receiver, secret_file):
    receiver.script = [400]
    outputs = outputs_for(config, receiver.url, secret_file)
    conn = open_events_db(outputs.database)
    await outputs.start()
    try:
        commit_event(conn, make_event(name="A"), [outputs.enqueue], [outputs.on_committed])
        second = commit_event(conn, make_event(name="B"), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: len(receiver.accepted) == 1, "the second event")
        await wait_until(lambda: outputs.status()["webhook:test"]["pending"] == 0, "an empty outbox")
        status = outputs.status()["webhook:test"]
    finally:
        await outputs.close()
        conn.close()
    assert receiver.accepted_ids() == [second["id"]]
    assert status["rejected"] == 1
    assert status["delivered"] == 1
    assert [r["status"] for r in receiver.requests] == [400, 200]


async def test_a_full_outbox_drops_the_oldest_with_a_counter_and_a_log_line(config, secret_file, caplog):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    outputs = outputs_for(config, url, secret_file, outbox_max_rows=3)
    conn = open_events_db(outputs.database)
    with caplog.at_level(logging.WARNING, logger="daemon.services.outbox"):
        sent = [commit_event(conn, make_event(name=str(i)), [outputs.enqueue]) for i in range(5)]
    assert pending_rows(outputs.database) == [e["id"] for e in sent[2:]]
    full = [r for r in caplog.records if "is full" in r.getMessage()]
    assert len(full) == 1  # rate-limited: one line for two drops
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 5  # the events themselves stay

    receiver = await Receiver().start(port)
    await outputs.start()
    try:
        await wait_until(lambda: len(receiver.accepted) == 3, "the three newest")
        await wait_until(lambda: outputs.status()["webhook:test"]["pending"] == 0, "an empty outbox")
        status = outputs.status()["webhook:test"]
    finally:
        await outputs.close()
        await receiver.stop()
        conn.close()
    assert receiver.accepted_ids() == [e["id"] for e in sent[2:]]
    assert status["dropped"] == 2  # persistent: read back from the database


def test_only_committed_events_reach_the_outbox(config, secret_file):
    outputs = outputs_for(config, "http://127.0.0.1:9/hook", secret_file)
    conn = open_events_db(outputs.database)

    def failing_hook(conn: sqlite3.Connection, event_id: int, event: dict) -> None:
        raise RuntimeError("the events store failed after queueing")

    committed = commit_event(conn, make_event(name="A"), [outputs.enqueue])
    with pytest.raises(RuntimeError):
        commit_event(conn, make_event(name="B"), [outputs.enqueue, failing_hook])
    assert pending_rows(outputs.database) == [committed["id"]]
    conn.close()


def test_the_hook_creates_the_outbox_if_the_events_store_did_not(config, secret_file, tmp_path):
    outputs = outputs_for(config, "http://127.0.0.1:9/hook", secret_file)
    outputs.database.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(outputs.database, isolation_level=None)
    conn.execute(EVENTS_DDL)  # an events store that knows nothing of the outbox
    committed = commit_event(conn, make_event(name="A"), [outputs.enqueue])
    assert pending_rows(outputs.database) == [committed["id"]]
    conn.close()


KILLED_WRITER = """
import json, os, signal, sys, time
from daemon.config import load_config, with_overrides
from daemon.services.outputs import build_outputs
from outputs_support import commit_event, make_event, open_events_db
config = with_overrides(load_config(None, environ={}), **json.loads(sys.argv[1]))
outputs = build_outputs(config)
conn = open_events_db(outputs.database)
commit_event(conn, make_event(name="committed"), [outputs.enqueue])
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO events (time, body) VALUES (?, '{}')", (time.time(),))
outputs.enqueue(conn, 999, make_event(name="never committed"))
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_after_kill_9_only_committed_events_are_delivered(config, receiver, secret_file):
    hook = {"url": receiver.url, "secret_file": str(secret_file), "name": "test"}
    overrides = {"server": {"state_dir": config.server.state_dir}, "outputs": {"webhooks": [hook]}}
    repo = REPO
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, json.dumps(overrides)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": f"{repo}:{repo / 'tests'}"},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == -9, result.stderr.decode()
    outputs = outputs_for(config, receiver.url, secret_file)
    await outputs.start()
    try:
        await wait_until(lambda: len(receiver.accepted) == 1, "the committed event")
        await wait_until(lambda: outputs.status()["webhook:test"]["pending"] == 0, "an empty outbox")
    finally:
        await outputs.close()
    [delivered] = [json.loads(r["body"]) for r in receiver.accepted]
    assert delivered["name"] == "committed"
    with sqlite3.connect(outputs.database) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_the_default_secret_is_created_private_in_the_state_dir(config):
    outputs = build_outputs(with_overrides(config, outputs={"webhooks": [{"url": "https://example.org/in"}]}))
    secret = Path(config.server.state_dir) / "webhook_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) == 64
    assert list(outputs.status()) == ["webhook:example.org/in"]  # no query, no credentials in names


def test_a_configured_secret_file_must_exist(config, tmp_path):
    missing = {"url": "https://example.org/in", "secret_file": str(tmp_path / "nope")}
    with pytest.raises(OutputError, match="cannot read the webhook secret"):
        build_outputs(with_overrides(config, outputs={"webhooks": [missing]}))


def test_nothing_configured_means_nothing_runs(config):
    outputs = build_outputs(config)
    assert not outputs.configured
    assert outputs.status() == {}
    assert not (Path(config.server.state_dir) / "events.sqlite3").exists()


async def test_a_dead_webhook_holds_back_no_other_output(config, receiver, secret_file):
    dead = f"http://127.0.0.1:{free_port()}/hook"
    hooks = [
        {"url": dead, "name": "dead", "secret_file": str(secret_file)},
        {"url": receiver.url, "name": "alive", "secret_file": str(secret_file)},
    ]
    settings = {"webhooks": hooks, "retry_initial_seconds": 0.02, "retry_max_seconds": 0.2}
    outputs = build_outputs(with_overrides(config, outputs=settings))
    store = MiniEventStore(outputs.database)
    outputs.attach(store)
    await outputs.start()
    try:
        sent = [store.insert(make_event(name=n)) for n in "ABCD"]
        await wait_until(lambda: len(receiver.accepted) == 4, "the live receiver's deliveries")
        await wait_until(lambda: outputs.status()["webhook:alive"]["pending"] == 0, "the live outbox empty")
        await wait_until(lambda: outputs.status()["webhook:dead"]["failures_in_a_row"] >= 2, "retries")
        status = outputs.status()
    finally:
        await outputs.close()
        store.close()
    assert receiver.accepted_ids() == [e["id"] for e in sent]
    assert status["webhook:alive"]["pending"] == 0
    assert status["webhook:dead"]["pending"] == 4
    assert status["webhook:dead"]["connected"] is False
