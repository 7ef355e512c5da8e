"""Hostile clients at the socket: a connection cap, and one log line per burst of accept errors.

aiohttp 3.14 has no connection cap, and its only read deadline is ``keepalive_timeout``: armed when a
connection opens and after each response, it closes a connection whose next request head has not fully
arrived (server.header_timeout). That alone does not stop thousands of slow connections from using every
file descriptor; then asyncio's accept loop logs a traceback per failed accept (hundreds of thousands
per minute: the log, on an SD card, becomes the attack).

- ``CappedAppRunner``: at most ``max_connections`` open. A new connection beyond the cap closes the
  oldest *idle* one (no request being handled: a slow or silent client), so a real client that connects
  and sends its request at once is served while slow ones churn; when every connection is busy with a
  request, the newcomer is closed instead. Evictions are counted and logged once per burst.
- ``open_file_budget``: the cap is clamped below the process's open-file limit (raised to its hard limit
  at start), so accept() does not run out of descriptors in the first place.
- ``quiet_accept_errors``: the loop's exception handler logs "out of system resource" accept errors
  once per burst with a count, never a traceback per connection.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

log = logging.getLogger("facegate.connections")

ACCEPT_BACKLOG = 128  # listen() backlog, and how many connections asyncio accepts per loop tick
# Descriptors kept free: SQLite, models, task files, camera, logging (64), and the accept() bursts that
# land before an evicted connection's descriptor is closed (a close takes effect a tick or two later).
FD_RESERVE = 64 + 3 * ACCEPT_BACKLOG
BURST_SECONDS = 60.0


class BurstLog:
    """One log line for the first event of a burst, then a count at most every ``period`` seconds."""

    def __init__(self, message: str, period: float = BURST_SECONDS) -> None:
        self._message = message
        self._period = period
        self._last = -period
        self._suppressed = 0
        self.total = 0

    def event(self, detail: str = "") -> None:
        self.total += 1
        now = time.monotonic()
        if now - self._last < self._period:
            self._suppressed += 1
            return
        more = f" (+{self._suppressed} more in the last {self._period:.0f} s)" if self._suppressed else ""
        log.warning("%s%s%s", self._message, f": {detail}" if detail else "", more)
        self._last, self._suppressed = now, 0


class ConnectionCap:
    """Keeps a Server's open connections at or under ``limit`` (see the module docstring)."""

    def __init__(self, server: Server, limit: int) -> None:
        self.limit = limit
        self.evicted = 0
        self.refused = 0
        self._server = server
        self._connections: dict[RequestHandler, asyncio.Transport] = server._connections  # insertion-ordered
        self._original = server.connection_made
        self._burst = BurstLog(f"connection cap ({limit}) reached: closing idle connections")

    def install(self) -> None:
        self._server.connection_made = self.connection_made  # type: ignore[method-assign]

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._original(handler, transport)
        if len(self._connections) <= self.limit:
            return
        for other in self._connections:  # oldest first
            if other is not handler and _idle(other):
                other.force_close()
                self._connections.pop(other, None)
                self.evicted += 1
                self._burst.event()
                return
        handler.force_close()  # every other connection is busy with a request: refuse the newcomer
        self._connections.pop(handler, None)
        self.refused += 1
        self._burst.event("all busy, refusing new connections")

    def stats(self) -> dict[str, int]:
        return {
            "open": len(self._connections),
            "limit": self.limit,
            "evicted": self.evicted,
            "refused": self.refused,
        }


def _idle(handler: RequestHandler) -> bool:
    """No request is being handled nor waiting to be (parsed, not yet dispatched): the connection is
    waiting for, or receiving, a request head. Private attributes of aiohttp's RequestHandler, pinned by
    constraints.txt; tests/test_hostile_connections.py covers them."""
    return handler._current_request is None and not handler._messages and not handler._force_close


class CappedAppRunner(web.AppRunner):
    """An AppRunner whose server keeps at most ``max_connections`` open connections."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self.cap: ConnectionCap | None = None

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        self.cap = ConnectionCap(server, self.max_connections)
        self.cap.install()
        return server


def open_file_budget(wanted: int) -> int:
    """Raise the open-file soft limit to the hard limit; the connection cap that fits under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    fits = max(16, soft - FD_RESERVE)
    if wanted > fits:
        log.warning(
            "server.max_connections %d does not fit the open-file limit %d: using %d (raise LimitNOFILE)",
            wanted,
            soft,
            fits,
        )
        return fits
    return wanted


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> BurstLog:
    """Accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) logged once per burst; other loop errors as before."""
    burst = BurstLog("accept() failed: out of system resources (descriptors or memory)")
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == "socket.accept() out of system resource":
            burst.event(str(context.get("exception", "")))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return burst
