"""Choose the door-event sinks from config, through one explicit table.

=========  =========  ==================================================================
kind       delivery   configured by
=========  =========  ==================================================================
webhook    outbox     ``outputs.webhooks`` (one sink per entry, named ``webhook:<name>``)
mqtt       outbox     ``outputs.mqtt.host`` (one sink, named ``mqtt``)
relay      at once    ``outputs.relay.pin`` (one sink, named ``relay``)
=========  =========  ==================================================================

A sink's name keys its outbox rows, so it must stay the same across restarts.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.config import OutputsConfig
from daemon.services.sinks.base import OutputError, Sink
from daemon.services.sinks.mqtt import MqttSink
from daemon.services.sinks.relay import DoorRelay
from daemon.services.sinks.webhook import DEFAULT_SECRET_NAME, WebhookSink, display_url, load_secret


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What backends may need besides their config section."""

    state_dir: Path
    device: str


def _webhooks(config: OutputsConfig, context: SinkContext) -> list[Sink]:
    sinks: list[Sink] = []
    for hook in config.webhooks:
        if hook.secret_file:
            secret = load_secret(Path(hook.secret_file), create=False)
        else:
            secret = load_secret(context.state_dir / DEFAULT_SECRET_NAME, create=True)
        name = f"webhook:{hook.name or display_url(hook.url)}"
        sinks.append(WebhookSink(name, hook.url, secret, hook.timeout))
    return sinks


def _mqtt(config: OutputsConfig, context: SinkContext) -> list[Sink]:
    mqtt = config.mqtt
    if not mqtt.host:
        return []
    password = ""
    if mqtt.password_file:
        try:
            password = Path(mqtt.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OutputError(f"cannot read outputs.mqtt.password_file: {exc.strerror}") from exc
    door_seconds = config.relay.pulse_seconds if config.relay.pin else 5.0
    return [
        MqttSink(
            "mqtt",
            host=mqtt.host,
            port=mqtt.port,
            device=context.device,
            topic_prefix=mqtt.topic_prefix,
            discovery_prefix=mqtt.discovery_prefix,
            discovery=mqtt.discovery,
            username=mqtt.username,
            password=password,
            tls=mqtt.tls,
            keepalive=mqtt.keepalive,
            timeout=mqtt.timeout,
            door_open_seconds=door_seconds,
        )
    ]


def _relay(config: OutputsConfig, context: SinkContext) -> list[Sink]:
    relay = config.relay
    if not relay.pin:
        return []
    return [DoorRelay("relay", relay.pin, active_high=relay.active_high, pulse_seconds=relay.pulse_seconds)]


#: Sink kind → factory(outputs config, context) → the configured sinks of that kind (maybe none).
#: The one place a new sink backend is registered.
SINK_BACKENDS: dict[str, Callable[[OutputsConfig, SinkContext], list[Sink]]] = {
    "webhook": _webhooks,
    "mqtt": _mqtt,
    "relay": _relay,
}


def device_name(config: OutputsConfig) -> str:
    """outputs.device, or the host name made topic-safe."""
    if config.device:
        return config.device
    host = socket.gethostname().split(".")[0]
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in host) or "facegate"


def sinks_from_config(config: OutputsConfig, state_dir: Path) -> list[Sink]:
    """Build (not start) every configured sink; OutputError names what is wrong."""
    context = SinkContext(state_dir=state_dir, device=device_name(config))
    sinks = [sink for factory in SINK_BACKENDS.values() for sink in factory(config, context)]
    names = [sink.name for sink in sinks]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise OutputError(f"two outputs are both named {duplicate!r}: give the webhooks distinct names")
    return sinks
