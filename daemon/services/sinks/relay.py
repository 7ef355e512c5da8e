"""The door relay: pulse one GPIO line on every granted event, at once, never replayed.

gpiozero drives the line (on a Pi 5 through its lgpio pin factory; ``GPIOZERO_PIN_FACTORY`` picks
another). The pulse runs on gpiozero's own background thread, so ``on_committed`` returns at once
whatever thread the events store commits on. A grant that arrives during a pulse restarts it (the door
stays open ``pulse_seconds`` after the last grant). Only events younger than ``max_age`` seconds
open the door: a door must not open late.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from gpiozero import DigitalOutputDevice

from daemon.ops.ratelimit import RateLimitedLog
from daemon.services.sinks.base import Event, ImmediateSink, OutputError

log = logging.getLogger(__name__)

MAX_EVENT_AGE = 5.0


def parse_pin(spec: str) -> int | str:
    """'17' → 17 (a GPIO/BCM number); 'GPIO17', 'BOARD11', 'J8:11' are passed to gpiozero as they are."""
    text = spec.strip()
    if not text:
        raise OutputError("outputs.relay.pin is empty")
    return int(text) if text.isdigit() else text


class DoorRelay(ImmediateSink):
    kind = "relay"

    def __init__(
        self,
        name: str,
        pin: str,
        *,
        active_high: bool = True,
        pulse_seconds: float = 1.0,
        max_age: float = MAX_EVENT_AGE,
        pin_factory: Any = None,
    ) -> None:
        super().__init__(name)
        self.pin = parse_pin(pin)
        self.active_high = active_high
        self.pulse_seconds = pulse_seconds
        self.max_age = max_age
        self.pulses = 0
        self.skipped_stale = 0
        self._pin_factory = pin_factory
        self._device: Any = None
        self._lock = threading.Lock()
        self._warn = RateLimitedLog(log)

    async def start(self, wake: Any) -> None:
        self.open()

    def open(self) -> None:
        """Claim the GPIO line, driven inactive. A failure is reported in status, not raised."""
        try:
            self._device = DigitalOutputDevice(
                self.pin, active_high=self.active_high, initial_value=False, pin_factory=self._pin_factory
            )
        except Exception as exc:  # gpiozero raises many kinds (no pin factory, pin in use, bad pin)
            self.connected, self.last_error = False, f"cannot open GPIO {self.pin}: {exc}"
            log.error("door relay: %s", self.last_error)
            return
        self.connected, self.last_error = True, None
        log.info("door relay on GPIO %s (active %s, pulse %g s)", self.pin, self._level(), self.pulse_seconds)

    async def close(self) -> None:
        with self._lock:
            device, self._device = self._device, None
        if device is not None:
            device.off()
            device.close()
        self.connected = False

    def on_committed(self, event: Event) -> None:
        if event.get("decision") != "granted":
            return
        try:
            age = time.time() - float(event["time"])
        except (KeyError, TypeError, ValueError):
            age = 0.0  # no usable time: it is being committed now
        if age > self.max_age:
            self.skipped_stale += 1
            self._warn.warning("stale", "door relay: ignored a grant %.0f s old", age)
            return
        with self._lock:
            device = self._device
            if device is None:
                self._warn.error("closed", "door relay: grant %s but the GPIO is not open", event.get("id"))
                return
            try:
                device.blink(on_time=self.pulse_seconds, off_time=0, n=1, background=True)
            except Exception as exc:  # a GPIO fault must never reach the events store
                self.last_error = f"pulse failed: {exc}"
                self._warn.error("pulse", "door relay: %s", self.last_error)
                return
            self.pulses += 1

    def status(self) -> dict[str, Any]:
        extra = {"pin": str(self.pin), "pulses": self.pulses, "skipped_stale": self.skipped_stale}
        return {**super().status(), **extra}

    def _level(self) -> str:
        return "high" if self.active_high else "low"
