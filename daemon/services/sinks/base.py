"""The one interface every door-event sink implements, and the sinks' exceptions.

Two kinds, both behind ``Sink``:

- durable sinks (webhook, MQTT) are fed from the SQLite outbox by the dispatcher: at least once, in
  commit order, retried with exponential backoff, after restarts too. ``deliver`` raises
  ``DeliveryError`` to be retried later, ``EventRejected`` when retrying cannot help.
- immediate sinks (the door relay) act in the events store's post-commit listener and are never
  replayed: a door must not open late.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from daemon.errors import FacegateError

Event = dict[str, Any]


class OutputError(FacegateError):
    """A door output is misconfigured or cannot be set up."""


class DeliveryError(OutputError):
    """This delivery failed but may succeed later (network, timeout, 5xx, broker down): retry."""


class EventRejected(OutputError):
    """The receiver refused this event for good (e.g. HTTP 400): retrying cannot help."""


class Sink(ABC):
    """A named door output. ``status()`` is a plain dict for /health and never blocks."""

    kind: ClassVar[str]
    durable: ClassVar[bool]

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected: bool | None = None
        self.last_error: str | None = None

    @abstractmethod
    async def start(self, wake: Callable[[], None]) -> None:
        """Open connections; ``wake()`` asks the dispatcher to retry now (e.g. reconnected)."""

    @abstractmethod
    async def close(self) -> None:
        """Release everything; called once at shutdown."""

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": self.connected, "last_error": self.last_error}


class DurableSink(Sink):
    """Fed from the outbox by the dispatcher."""

    durable = True
    #: seconds one delivery may take at most (the dispatcher enforces it too)
    timeout: float = 10.0

    @abstractmethod
    async def deliver(self, event: Event, attempt: int) -> None:
        """Deliver one event (``attempt`` counts from 1); raise DeliveryError or EventRejected."""


class ImmediateSink(Sink):
    """Acts in the post-commit listener, on whatever thread commits; must return at once."""

    durable = False

    @abstractmethod
    def on_committed(self, event: Event) -> None:
        """React to a committed event; never raises, never blocks."""
