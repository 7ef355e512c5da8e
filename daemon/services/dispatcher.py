"""Deliver the outbox to the durable sinks: at least once, in commit order, with exponential backoff.

One asyncio task per sink, so a dead webhook never holds back MQTT (or another webhook). A sink takes
its rows oldest first; a row is deleted only after its delivery succeeded, so an event whose delivery
was cut by a crash is sent again after the restart (receivers deduplicate by event id). After a failure
the sink waits ``retry_initial`` seconds, doubling up to ``retry_max``; a sink that reconnects (MQTT)
cuts the wait short. Every SQLite call runs on the dispatcher's one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from daemon.ops.ratelimit import RateLimitedLog
from daemon.services.outbox import OutboxStore, SinkCounts
from daemon.services.sinks.base import DeliveryError, DurableSink, EventRejected, OutputError

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH = 32
#: with nothing to do, a sink looks at the outbox this often anyway (events committed by another process)
IDLE_POLL_SECONDS = 30.0
#: the dispatcher's own guard on one delivery, beyond the sink's timeout
DELIVERY_GRACE_SECONDS = 5.0


class _SinkState:
    def __init__(self, sink: DurableSink) -> None:
        self.sink = sink
        self.wake = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.failures = 0
        self.delivered = 0
        self.rejected = 0
        self.counts = SinkCounts()


class Dispatcher:
    def __init__(
        self,
        database: str | Path,
        sinks: Sequence[DurableSink],
        retry_initial: float = 1.0,
        retry_max: float = 300.0,
    ) -> None:
        self.database = Path(database)
        self.retry_initial = retry_initial
        self.retry_max = max(retry_max, retry_initial)
        self._states = {sink.name: _SinkState(sink) for sink in sinks}
        self._store: OutboxStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warn = RateLimitedLog(log)

    async def start(self) -> None:
        """Open the outbox, forget rows of sinks no longer configured, start the sinks and their tasks."""
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="facegate-outbox")
        try:
            self._store = await self._db(OutboxStore, self.database)
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(f"cannot open the outbox in {self.database}: {exc}") from exc
        forgotten = await self._db(self._store.forget_sinks_except, list(self._states))
        if forgotten:
            log.warning("outbox: dropped %d undelivered events of outputs no longer configured", forgotten)
        await self._refresh_counts()
        for name, state in self._states.items():
            await state.sink.start(self._reconnected_callback(state))
            self._tasks.append(asyncio.create_task(self._run(state), name=f"outbox-{name}"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for state in self._states.values():
            try:
                await state.sink.close()
            except Exception:  # a boundary: one sink failing to close must not keep others open
                log.exception("closing output %s failed", state.sink.name)
        if self._store is not None:
            await self._db(self._store.close)
            self._store = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def wake(self) -> None:
        """New rows were committed: sinks that are not backing off look now. Event-loop thread only."""
        for state in self._states.values():
            state.wake.set()

    def wake_threadsafe(self) -> None:
        """``wake`` from any thread (the events store's post-commit listener)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self.wake)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                **state.sink.status(),
                "pending": state.counts.pending,
                "dropped": state.counts.dropped,
                "delivered": state.delivered,
                "rejected": state.rejected,
                "failures_in_a_row": state.failures,
            }
            for name, state in self._states.items()
        }

    async def _run(self, state: _SinkState) -> None:
        while True:
            try:
                await self._drain(state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a boundary: the outbox database itself failing must not kill the task
                self._warn.error(f"loop:{state.sink.name}", "outbox %s: %s", state.sink.name, exc)
                state.failures += 1
            if state.failures:
                await self._wait(state.reconnected, self._backoff(state.failures))
            else:
                await self._wait(state.wake, IDLE_POLL_SECONDS)

    async def _drain(self, state: _SinkState) -> None:
        """Deliver due rows until the outbox is empty for this sink or a delivery fails."""
        assert self._store is not None
        sink = state.sink
        state.wake.clear()
        state.reconnected.clear()
        while True:
            rows = await self._db(self._store.due, sink.name, BATCH)
            await self._refresh_counts()  # pending counts the rows being delivered until they are gone
            if not rows:
                state.failures = 0
                return
            for row in rows:
                try:
                    async with asyncio.timeout(sink.timeout + DELIVERY_GRACE_SECONDS):
                        await sink.deliver(row.event, row.attempts + 1)
                except EventRejected as exc:
                    state.rejected += 1
                    key = f"rejected:{sink.name}"
                    self._warn.warning(key, "output %s: event %d dropped: %s", sink.name, row.event_id, exc)
                    await self._db(self._store.delivered, row.id)
                except (DeliveryError, TimeoutError) as exc:
                    state.failures += 1
                    error = str(exc) or "delivery timed out"
                    if sink.last_error is None:
                        sink.last_error = error
                    await self._db(self._store.failed, row.id, error)
                    return
                else:
                    state.failures = 0
                    state.delivered += 1
                    await self._db(self._store.delivered, row.id)

    def _backoff(self, failures: int) -> float:
        return min(self.retry_initial * 2.0 ** min(failures - 1, 30), self.retry_max)

    @staticmethod
    async def _wait(event: asyncio.Event, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    def _reconnected_callback(self, state: _SinkState) -> Callable[[], None]:
        def reconnected() -> None:
            state.reconnected.set()
            state.wake.set()

        return reconnected

    async def _refresh_counts(self) -> None:
        assert self._store is not None
        counts = await self._db(self._store.counts)
        for name, state in self._states.items():
            state.counts = counts.get(name, SinkCounts())

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None and self._executor is not None
        return await self._loop.run_in_executor(self._executor, fn, *args)
