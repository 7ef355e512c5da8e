"""Door outputs wired together, as plain Python for whoever owns the events store.

The events store calls two things of ``Outputs``:

- ``enqueue(conn, event_id, event)``: an in-transaction hook, run inside the transaction that inserts
  the event, so webhooks and MQTT only ever get committed events (services/outbox.py);
- ``on_committed(event)``: a post-commit listener; pulses the door relay on a grant (never replayed)
  and wakes the dispatcher.

``attach(store)`` registers both on an events store. The owner calls ``await start()`` once the loop
runs (before the store's first insert, so the relay is ready) and ``await close()`` at shutdown, and
adds ``status`` to /health. Nothing configured: every call is a no-op and no file is opened.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from daemon.config import Config
from daemon.ops.ratelimit import RateLimitedLog
from daemon.services.dispatcher import Dispatcher
from daemon.services.outbox import Outbox
from daemon.services.sinks.base import DurableSink, Event, ImmediateSink, Sink
from daemon.services.sinks.registry import sinks_from_config

log = logging.getLogger(__name__)

EVENTS_DATABASE_NAME = "events.sqlite3"


class EventHooks(Protocol):
    """What the events store offers (daemon/library/events.py's EventStore)."""

    def add_transaction_hook(self, hook: Callable[[sqlite3.Connection, int, Event], None]) -> None: ...

    def add_listener(self, listener: Callable[[Event], None]) -> None: ...


class Outputs:
    def __init__(
        self,
        sinks: Sequence[Sink],
        database: str | Path,
        max_rows: int = 10000,
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
    ) -> None:
        durable = [s for s in sinks if isinstance(s, DurableSink)]
        self.immediate = [s for s in sinks if isinstance(s, ImmediateSink)]
        self.database = Path(database)
        self.outbox = Outbox([s.name for s in durable], max_rows)
        self.dispatcher = Dispatcher(database, durable, retry_initial, retry_max) if durable else None
        self._warn = RateLimitedLog(log)

    @property
    def configured(self) -> bool:
        return bool(self.immediate) or self.dispatcher is not None

    def attach(self, store: EventHooks) -> None:
        """Register the hook and the listener on the events store, before its first insert."""
        if self.dispatcher is not None:
            store.add_transaction_hook(self.enqueue)
        if self.configured:
            store.add_listener(self.on_committed)

    def enqueue(self, conn: sqlite3.Connection, event_id: int, event: Event) -> None:
        """In-transaction hook of the events store (errors abort the event's transaction, as they should)."""
        self.outbox.enqueue(conn, event_id, event)

    def on_committed(self, event: Event) -> None:
        """Post-commit listener of the events store: any thread, returns at once, never raises."""
        for sink in self.immediate:
            try:
                sink.on_committed(event)
            except Exception as exc:  # a boundary: an output must never break the events store
                key, event_id = f"listener:{sink.name}", event.get("id")
                self._warn.error(key, "output %s failed on event %s: %s", sink.name, event_id, exc)
        if self.dispatcher is not None:
            self.dispatcher.wake_threadsafe()

    async def start(self) -> None:
        """Open the outbox and start every output; on a failure, close what was started and raise."""
        try:
            for sink in self.immediate:
                await sink.start(lambda: None)
            if self.dispatcher is not None:
                await self.dispatcher.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.close()
        for sink in self.immediate:
            await sink.close()

    def status(self) -> dict[str, Any]:
        """Per output: kind, connected, pending, dropped, last_error (and kind-specific counters)."""
        body: dict[str, Any] = {}
        for sink in self.immediate:
            body[sink.name] = {**sink.status(), "pending": 0, "dropped": 0}
        if self.dispatcher is not None:
            body.update(self.dispatcher.status())
        return body


def build_outputs(config: Config, database: str | Path | None = None) -> Outputs:
    """The configured outputs; ``database`` defaults to ``<state_dir>/events.sqlite3``."""
    outputs = config.outputs
    return Outputs(
        sinks_from_config(outputs, config.state_path),
        database if database is not None else config.state_path / EVENTS_DATABASE_NAME,
        max_rows=outputs.outbox_max_rows,
        retry_initial=outputs.retry_initial_seconds,
        retry_max=outputs.retry_max_seconds,
    )
