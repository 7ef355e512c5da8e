"""MQTT sink (paho-mqtt): events, availability with a last will, Home Assistant discovery.

Topics (``<base>`` = ``<topic_prefix>/<device>``, docs/API.md, MQTT):

- ``<base>/events``        every event as JSON, QoS 1, not retained
- ``<base>/last_person``   the latest event as JSON, QoS 1, retained (the "Last person" sensor)
- ``<base>/door``          ``ON`` for a fresh granted event, ``OFF`` retained at connect (the "Door"
                            binary sensor; Home Assistant turns it off after ``off_delay``)
- ``<base>/availability``  ``online`` retained at connect, ``offline`` at a clean stop and as the
                            last will when the connection dies
- ``<discovery_prefix>/sensor/<node>/last_person/config`` and
  ``<discovery_prefix>/binary_sensor/<node>/door/config``: retained discovery, so Home Assistant
  creates the entities by itself.

paho runs the connection in its own thread and reconnects with backoff by itself; a publish waits for
the broker's PUBACK on this sink's own thread, never on the event loop or the default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from daemon.ops.ratelimit import RateLimitedLog
from daemon.services.sinks.base import DeliveryError, DurableSink, Event

log = logging.getLogger(__name__)

QOS = 1
#: a granted event older than this does not switch the "Door" entity on (a replay after an outage)
DOOR_STATE_MAX_AGE = 10.0
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 60
MAX_QUEUED_MESSAGES = 64


class MqttSink(DurableSink):
    kind = "mqtt"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        device: str,
        topic_prefix: str = "facegate",
        discovery_prefix: str = "homeassistant",
        discovery: bool = True,
        username: str = "",
        password: str = "",
        tls: bool = False,
        keepalive: int = 30,
        timeout: float = 10.0,
        door_open_seconds: float = 5.0,
    ) -> None:
        super().__init__(name)
        self.host, self.port, self.device = host, port, device
        self.timeout = timeout
        self.keepalive = keepalive
        self.base = f"{topic_prefix}/{device}"
        self.discovery_prefix = discovery_prefix if discovery else ""
        self.door_open_seconds = door_open_seconds
        self._username, self._password, self._tls = username, password, tls
        self._client: paho.Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: Callable[[], None] = lambda: None
        self._closing = False
        self._warn = RateLimitedLog(log)

    @property
    def availability_topic(self) -> str:
        return f"{self.base}/availability"

    def discovery_messages(self) -> list[tuple[str, dict[str, Any]]]:
        """(topic, config) of the Home Assistant entities; empty when discovery is off."""
        if not self.discovery_prefix:
            return []
        node = f"facegate_{self.device}"
        common = {
            "availability_topic": self.availability_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": {
                "identifiers": [node],
                "name": f"Facegate {self.device}",
                "manufacturer": "Facegate",
                "model": "Facegate face appliance",
            },
        }
        last_person = {
            "name": "Last person",
            "unique_id": f"{node}_last_person",
            "state_topic": f"{self.base}/last_person",
            "value_template": "{{ value_json.name if value_json.name else value_json.decision }}",
            "json_attributes_topic": f"{self.base}/last_person",
            "icon": "mdi:account-check",
            **common,
        }
        door = {
            "name": "Door",
            "unique_id": f"{node}_door",
            "state_topic": f"{self.base}/door",
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "door",
            "off_delay": max(1, round(self.door_open_seconds)),
            **common,
        }
        prefix = self.discovery_prefix
        return [
            (f"{prefix}/sensor/{node}/last_person/config", last_person),
            (f"{prefix}/binary_sensor/{node}/door/config", door),
        ]

    async def start(self, wake: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = wake
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="facegate-mqtt")
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"facegate-{self.device}")
        client.will_set(self.availability_topic, "offline", qos=QOS, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        client.connect_timeout = self.timeout
        if self._username:
            client.username_pw_set(self._username, self._password or None)
        if self._tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        self.connected = False
        client.connect_async(self.host, self.port, keepalive=self.keepalive)
        client.loop_start()  # from here on, paho's thread sets `connected`

    async def close(self) -> None:
        client, executor = self._client, self._executor
        if client is None or executor is None:
            return
        self._closing = True
        loop = asyncio.get_running_loop()

        def stop() -> None:
            if self.connected:
                with contextlib.suppress(DeliveryError):
                    self._publish_blocking(self.availability_topic, "offline", retain=True)
            client.disconnect()
            client.loop_stop()

        try:
            await loop.run_in_executor(executor, stop)
        finally:
            executor.shutdown(wait=False)
            self._client = self._executor = None
            self.connected = False

    async def deliver(self, event: Event, attempt: int) -> None:
        if self._executor is None or not self.connected:
            raise DeliveryError(f"not connected to the MQTT broker {self.host}:{self.port}")
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        messages = [(f"{self.base}/events", body, False), (f"{self.base}/last_person", body, True)]
        fresh = time.time() - float(event.get("time") or 0) <= DOOR_STATE_MAX_AGE
        if event.get("decision") == "granted" and fresh:
            messages.append((f"{self.base}/door", "ON", False))
        loop = asyncio.get_running_loop()
        for topic, payload, retain in messages:
            await loop.run_in_executor(self._executor, self._publish_blocking, topic, payload, retain)

    def _publish_blocking(self, topic: str, payload: str, retain: bool) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (on this sink's thread)."""
        client = self._client
        if client is None:
            raise DeliveryError("MQTT sink closed")
        info = client.publish(topic, payload, qos=QOS, retain=retain)
        try:
            info.wait_for_publish(self.timeout)
        except (ValueError, RuntimeError) as exc:
            raise DeliveryError(f"publish to {topic} failed: {exc}") from None
        if not info.is_published():
            raise DeliveryError(f"no acknowledgement from the broker within {self.timeout:g} s")

    # paho callbacks: they run on paho's network thread.

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._set_down(f"broker refused the connection: {reason}")
            return
        self.connected, self.last_error = True, None  # before "online" is out: close() must say "offline"
        client.publish(self.availability_topic, "online", qos=QOS, retain=True)
        client.publish(f"{self.base}/door", "OFF", qos=QOS, retain=True)
        for topic, config in self.discovery_messages():
            client.publish(topic, json.dumps(config, separators=(",", ":")), qos=QOS, retain=True)
        log.info("connected to the MQTT broker %s:%d", self.host, self.port)
        self._call_wake()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self._closing or not self.connected:  # a refused connection already said why
            self.connected = False
            return
        self._set_down(f"disconnected from the broker: {reason}")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._set_down(f"cannot connect to the MQTT broker {self.host}:{self.port}")

    def _set_down(self, error: str) -> None:
        self.connected, self.last_error = False, error
        self._warn.warning("down", "MQTT: %s (retrying)", error)

    def _call_wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake)
