"""The bounded pool that runs CPU work off the event loop.

Each worker owns one VisionEngine (its own TFLite interpreters: an interpreter is not thread-safe). A job
borrows a free engine, runs in the thread pool, and gives the engine back. At most ``max_pending`` jobs
may be queued or running; beyond that ``run`` raises Overloaded at once, so the API answers 503 with
Retry-After instead of letting a queue grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from daemon.errors import Overloaded

log = logging.getLogger(__name__)

EngineT = TypeVar("EngineT")
T = TypeVar("T")


class InferencePool(Generic[EngineT]):
    def __init__(self, engine_factory: Callable[[], EngineT], workers: int, max_pending: int) -> None:
        self._engine_factory = engine_factory
        self._workers = workers
        self._max_pending = max(max_pending, workers)
        self._executor: ThreadPoolExecutor | None = None
        self._free: asyncio.Queue[EngineT] | None = None
        self._pending = 0
        self._completed = 0
        self._rejected = 0

    @property
    def started(self) -> bool:
        return self._free is not None

    async def start(self) -> None:
        """Create the threads and one engine per worker (models load here, in the threads)."""
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="facegate-worker")
        engines = await asyncio.gather(
            *(loop.run_in_executor(self._executor, self._engine_factory) for _ in range(self._workers))
        )
        free: asyncio.Queue[EngineT] = asyncio.Queue()
        for engine in engines:
            free.put_nowait(engine)
        self._free = free
        log.info(
            "inference pool ready: %d workers, at most %d jobs pending", self._workers, self._max_pending
        )

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._free = None

    def stats(self) -> dict[str, int]:
        return {
            "workers": self._workers,
            "pending": self._pending,
            "max_pending": self._max_pending,
            "completed": self._completed,
            "rejected": self._rejected,
        }

    async def run(self, job: Callable[[EngineT], T]) -> T:
        """Run job(engine) on a worker; Overloaded when too many jobs are already pending."""
        if self._free is None or self._executor is None:
            raise Overloaded(retry_after=2.0)
        if self._pending >= self._max_pending:
            self._rejected += 1
            raise Overloaded(retry_after=1.0)
        self._pending += 1
        try:
            free = self._free
            engine = await free.get()
            future = asyncio.get_running_loop().run_in_executor(self._executor, job, engine)
            # The engine goes back only when the thread is really done with it, even if the caller
            # is cancelled (a client that disconnects): two jobs must never share an interpreter.
            future.add_done_callback(lambda done: _release(free, engine, done))
            return await asyncio.shield(future)
        finally:
            self._pending -= 1
            self._completed += 1


def _release(free: asyncio.Queue[EngineT], engine: EngineT, done: asyncio.Future[T]) -> None:
    free.put_nowait(engine)
    if not done.cancelled():
        done.exception()  # marks it retrieved: a cancelled caller never will, and asyncio would warn
