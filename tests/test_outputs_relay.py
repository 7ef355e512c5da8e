"""The door relay through gpiozero's MockFactory (gpiozero.pins.mock): one pulse per grant, never late."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from outputs_support import Receiver, commit_event, make_event, open_events_db, wait_until

from daemon.config import with_overrides
from daemon.services.outputs import build_outputs
from daemon.services.sinks.base import OutputError
from daemon.services.sinks.relay import DoorRelay


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def pulses(pin, active: bool) -> int:
    """Times the line went to its active level since the states were cleared."""
    return sum(1 for s in pin.states[1:] if s.state == active)


async def start_relay(factory: MockFactory, **kwargs) -> DoorRelay:
    relay = DoorRelay("relay", "17", pulse_seconds=0.05, pin_factory=factory, **kwargs)
    await relay.start(lambda: None)
    return relay


async def test_each_grant_pulses_the_line_once(factory):
    relay = await start_relay(factory)
    pin = factory.pin(17)
    assert pin.state is False  # claimed, inactive
    pin.clear_states()
    try:
        for n in range(1, 4):
            relay.on_committed({**make_event("granted"), "id": n})
            await wait_until(lambda n=n: pulses(pin, True) == n and pin.state is False, f"pulse {n} to end")
        for decision in ("denied", "unknown"):
            relay.on_committed({**make_event(decision, None), "id": 9})
        assert pulses(pin, True) == 3
        assert pin.state is False
        assert relay.status() == {
            "kind": "relay",
            "connected": True,
            "last_error": None,
            "pin": "17",
            "pulses": 3,
            "skipped_stale": 0,
        }
    finally:
        await relay.close()


async def test_an_active_low_relay_pulses_low(factory):
    relay = await start_relay(factory, active_high=False)
    pin = factory.pin(17)
    assert pin.state is True  # inactive is high
    pin.clear_states()
    try:
        relay.on_committed({**make_event("granted"), "id": 1})
        await wait_until(lambda: pulses(pin, False) == 1 and pin.state is True, "the low pulse to end")
        assert [s.state for s in pin.states] == [True, False, True]
    finally:
        await relay.close()


async def test_a_stale_grant_does_not_open_the_door(factory):
    relay = await start_relay(factory)
    pin = factory.pin(17)
    pin.clear_states()
    try:
        relay.on_committed({**make_event("granted", time=time.time() - 60), "id": 1})
        assert pulses(pin, True) == 0
        assert relay.status()["skipped_stale"] == 1
    finally:
        await relay.close()


async def test_a_missing_gpio_is_reported_and_never_raises():
    relay = DoorRelay("relay", "GPIO99", pin_factory=MockFactory())
    await relay.start(lambda: None)
    status = relay.status()
    assert status["connected"] is False
    assert "GPIO99" in status["last_error"]
    relay.on_committed({**make_event("granted"), "id": 1})  # logged, not raised
    await relay.close()


async def test_grants_pulse_after_commit_and_are_never_replayed_after_a_restart(config, monkeypatch):
    # The configured relay, on gpiozero's mock pins chosen the documented way (GPIOZERO_PIN_FACTORY).
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setattr(Device, "pin_factory", None)
    # A webhook whose receiver is down keeps the events pending across the restart.
    receiver = await Receiver().start()
    url = receiver.url
    await receiver.stop()
    overrides = {"webhooks": [{"url": url, "name": "down"}], "relay": {"pin": "17", "pulse_seconds": 0.05}}
    cfg = with_overrides(config, outputs=overrides)

    outputs = build_outputs(cfg)
    conn = open_events_db(outputs.database)
    await outputs.start()
    assert isinstance(Device.pin_factory, MockFactory)
    pin = Device.pin_factory.pin(17)
    pin.clear_states()
    try:
        commit_event(conn, make_event("granted"), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: pulses(pin, True) == 1 and pin.state is False, "the pulse")
        commit_event(conn, make_event("denied", None), [outputs.enqueue], [outputs.on_committed])
        await wait_until(lambda: outputs.status()["webhook:down"]["pending"] == 2, "two pending deliveries")
        assert outputs.status()["relay"]["pulses"] == 1
    finally:
        await outputs.close()

    restarted = build_outputs(cfg)
    await restarted.start()
    try:
        await wait_until(lambda: restarted.status()["webhook:down"]["pending"] == 2, "the outbox read back")
        assert restarted.status()["relay"]["connected"] is True
        assert pulses(pin, True) == 1  # the pending grant is not replayed on the relay
        assert restarted.status()["relay"]["pulses"] == 0
    finally:
        await restarted.close()
        conn.close()


async def test_an_outbox_that_cannot_open_stops_the_start_and_releases_the_relay(config, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setattr(Device, "pin_factory", None)
    overrides = {"webhooks": [{"url": "http://127.0.0.1:9/hook"}], "relay": {"pin": "17"}}
    outputs = build_outputs(with_overrides(config, outputs=overrides), database=Path(config.server.state_dir))
    with pytest.raises(OutputError, match="cannot open the outbox"):
        await outputs.start()
    assert outputs.status()["relay"]["connected"] is False  # closed again
    # The pin is free: a new relay can claim it.
    relay = DoorRelay("relay", "17")
    await relay.start(lambda: None)
    assert relay.status()["connected"] is True
    await relay.close()


def test_the_service_may_reach_the_gpio_chips():
    repo = Path(__file__).resolve().parent.parent
    unit = (repo / "systemd" / "facegate.service").read_text().splitlines()
    assert "DeviceAllow=char-gpiochip rw" in unit
    assert "m facegate gpio" in (repo / "systemd" / "facegate.sysusers").read_text().splitlines()
