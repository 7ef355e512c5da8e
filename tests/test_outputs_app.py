"""The outputs inside the daemon: fed by the door's events store, started with the app, in /health."""

from __future__ import annotations

import json
import time

from conftest import AUTH
from gpiozero import Device
from outputs_support import Receiver, wait_until

from daemon.api.door import DOOR
from daemon.api.outputs import OUTPUTS
from daemon.config import with_overrides
from daemon.library.events import NewEvent


async def test_health_reports_every_output(make_client, config, tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setattr(Device, "pin_factory", None)
    receiver = await Receiver().start()
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    hook = {"url": receiver.url, "name": "hq", "secret_file": str(secret)}
    cfg = with_overrides(
        config, outputs={"webhooks": [hook], "relay": {"pin": "GPIO17", "pulse_seconds": 0.05}}
    )
    try:
        client = await make_client(cfg)
        outputs = client.server.app[OUTPUTS]
        store = client.server.app[DOOR].events  # the door's events store, opened by the app
        assert store is not None and store.path == outputs.database
        event = store.insert(
            NewEvent(time.time(), "front", "granted", "match", 7, "tok", "Ada", ["staff"], 90.0)
        )
        await wait_until(lambda: len(receiver.accepted) == 1, "the delivery")
        await wait_until(lambda: outputs.status()["webhook:hq"]["pending"] == 0, "an empty outbox")
        resp = await client.get("/health", headers=AUTH)
        body = await resp.json()
    finally:
        await receiver.stop()
    assert receiver.accepted_ids() == [event["id"]]
    assert json.loads(receiver.accepted[0]["body"]) == event  # the store's own event JSON
    webhook, relay = body["outputs"]["webhook:hq"], body["outputs"]["relay"]
    assert webhook["last_error"] is None
    assert (webhook["kind"], webhook["connected"], webhook["pending"], webhook["dropped"]) == (
        "webhook",
        True,
        0,
        0,
    )
    assert (relay["kind"], relay["connected"], relay["pulses"], relay["last_error"]) == (
        "relay",
        True,
        1,
        None,
    )


async def test_no_outputs_no_health_section(make_client, config):
    client = await make_client(config)
    body = await (await client.get("/health", headers=AUTH)).json()
    assert "outputs" not in body
    assert not client.server.app[OUTPUTS].configured
