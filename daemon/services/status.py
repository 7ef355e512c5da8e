"""What the daemon is doing right now, for /health and systemd's STATUS line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


class DaemonStatus:
    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.started = time.monotonic()
        self.error: str | None = None
        self._loaded = asyncio.Event()
        self._failed = asyncio.Event()
        self._reporters: dict[str, Callable[[], dict[str, Any]]] = {}

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self.error is None

    def set_loaded(self) -> None:
        self._loaded.set()

    def set_failed(self, error: str) -> None:
        self.error = error
        self._failed.set()

    async def wait_loaded(self) -> None:
        """Return once models are loaded; raise RuntimeError if loading failed."""
        loaded = asyncio.ensure_future(self._loaded.wait())
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            await asyncio.wait({loaded, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            loaded.cancel()
            failed.cancel()
        if self.error is not None:
            raise RuntimeError(self.error)

    def add_reporter(self, name: str, reporter: Callable[[], dict[str, Any]]) -> None:
        """A component (camera, pool, library) adds its own section to /health."""
        self._reporters[name] = reporter

    def describe(self) -> dict[str, Any]:
        if self.error is not None:
            state = "error"
        elif self._loaded.is_set():
            state = "ok"
        else:
            state = "loading"
        body: dict[str, Any] = {"status": state, "model": self.model_name}
        if self.error is not None:
            body["error"] = self.error
        body["uptime_s"] = round(time.monotonic() - self.started, 1)
        for name, reporter in self._reporters.items():
            body[name] = reporter()
        return body
