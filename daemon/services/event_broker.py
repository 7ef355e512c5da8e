"""Live fan-out of committed events to SSE clients, on the event loop.

The events store calls :meth:`EventBroker.publish_threadsafe` after each commit (from the door's
thread); the broker hops to the loop and puts the event in every subscriber's bounded queue. A
subscriber whose queue is full is marked dropped and woken, so its handler ends the response: a slow
client loses its connection (and resumes with Last-Event-ID), it never blocks the door or the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from daemon.errors import FacegateError

log = logging.getLogger(__name__)


class TooManyClients(FacegateError):
    """The SSE client cap is reached."""


class Subscriber:
    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(queue_size + 1)
        self.limit = queue_size
        self.dropped = False

    def offer(self, event: dict[str, Any] | None) -> None:
        if self.dropped:
            return
        if event is not None and self.queue.qsize() >= self.limit:
            self.dropped = True
            event = None  # the wake-up: the handler sees ``dropped`` and ends
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(event)


class EventBroker:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_clients: int, queue_size: int) -> None:
        self._loop = loop
        self._max = max_clients
        self._queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self.dropped_total = 0
        self.closed = False

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscriber:
        if self.closed or len(self._subscribers) >= self._max:
            raise TooManyClients(f"at most {self._max} event stream clients")
        subscriber = Subscriber(self._queue_size)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish_threadsafe(self, event: dict[str, Any]) -> None:
        """A store listener: any thread."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(self._publish, event)

    def _publish(self, event: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers):
            was = subscriber.dropped
            subscriber.offer(event)
            if subscriber.dropped and not was:
                self.dropped_total += 1
                log.warning("event stream client too slow (%d events queued): dropped", subscriber.limit)

    def close(self) -> None:
        """Shutdown: end every stream."""
        self.closed = True
        for subscriber in list(self._subscribers):
            subscriber.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(None)
