"""The bounded worker pool: backpressure and one job per engine at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from daemon.errors import Overloaded
from daemon.services.workers import InferencePool


class CountingEngine:
    """Stands in for a VisionEngine: records how many jobs use it at once."""

    def __init__(self) -> None:
        self.in_use = 0
        self.max_in_use = 0
        self.lock = threading.Lock()

    def work(self, seconds: float) -> str:
        with self.lock:
            self.in_use += 1
            self.max_in_use = max(self.max_in_use, self.in_use)
        time.sleep(seconds)
        with self.lock:
            self.in_use -= 1
        return "done"


async def test_overloaded_beyond_max_pending_then_recovers():
    engines = []

    def factory():
        engines.append(CountingEngine())
        return engines[-1]

    pool = InferencePool(factory, workers=2, max_pending=3)
    await pool.start()
    try:
        jobs = [asyncio.create_task(pool.run(lambda e: e.work(0.2))) for _ in range(3)]
        await asyncio.sleep(0.02)
        with pytest.raises(Overloaded):
            await pool.run(lambda e: e.work(0))
        assert await asyncio.gather(*jobs) == ["done"] * 3
        assert await pool.run(lambda e: e.work(0)) == "done"
        assert pool.stats()["rejected"] == 1
        assert all(e.max_in_use == 1 for e in engines)
    finally:
        await pool.close()


async def test_cancelled_caller_does_not_free_a_busy_engine():
    engine = CountingEngine()
    pool = InferencePool(lambda: engine, workers=1, max_pending=4)
    await pool.start()
    try:
        first = asyncio.create_task(pool.run(lambda e: e.work(0.3)))
        await asyncio.sleep(0.05)
        first.cancel()  # the HTTP client went away; the thread still runs
        second = await pool.run(lambda e: e.work(0.01))
        assert second == "done"
        assert engine.max_in_use == 1  # the second job waited for the engine
    finally:
        await pool.close()


async def test_failing_job_raises_to_the_caller_and_frees_the_engine():
    pool = InferencePool(CountingEngine, workers=1, max_pending=2)
    await pool.start()
    try:

        def boom(engine):
            raise ValueError("bad input")

        with pytest.raises(ValueError, match="bad input"):
            await pool.run(boom)
        assert await pool.run(lambda e: e.work(0)) == "done"
    finally:
        await pool.close()


async def test_not_started_pool_is_overloaded():
    pool = InferencePool(CountingEngine, workers=1, max_pending=1)
    with pytest.raises(Overloaded):
        await pool.run(lambda e: e.work(0))


def test_pool_jobs_are_typed_by_the_engine(tmp_path, monkeypatch):
    """mypy sees the pool's engine type: a job's engine and result are checked, not Any."""
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "pool_typing.py"
    snippet.write_text(
        "from daemon.services.workers import InferencePool\n"
        "class Engine:\n"
        "    def count(self) -> int:\n"
        "        return 1\n"
        "async def use(pool: InferencePool[Engine]) -> None:\n"
        "    n: int = await pool.run(lambda engine: engine.count())\n"
        "    s: str = await pool.run(lambda engine: engine.count())\n"
        "    await pool.run(lambda engine: engine.missing())\n"
        "pool = InferencePool(Engine, workers=1, max_pending=1)\n"
        "reveal_type(pool)\n"
    )
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # where mypy finds the daemon package
    out, _err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    assert status == 1, out
    assert "pool_typing.py:7: error:" in out  # an int job where a str is wanted
    assert 'pool_typing.py:8: error: "Engine" has no attribute "missing"' in out
    assert "pool_typing.py:6:" not in out
    assert 'Revealed type is "daemon.services.workers.InferencePool[pool_typing.Engine]"' in out
