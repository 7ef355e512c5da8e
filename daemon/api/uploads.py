"""Request bodies from hostile clients: a shared budget of bytes held in memory, and a stall timeout.

- ``UploadBudget`` (limits.max_buffered_upload_bytes): every request with a body holds its declared
  length (or, without Content-Length, the largest body a buffering route accepts) for as long as it is
  handled; beyond the budget the request is refused before a byte is read: 503 with Retry-After, in the
  route's format. Routes that stream to disk (``@streams_to_disk``: video tasks) hold nothing.
- ``within``: each read of a body waits at most limits.body_timeout for bytes (408 beyond), so a
  client that stalls mid-body does not hold a handler, a buffer and a budget share forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from daemon.api.middleware import Handler
from daemon.appkeys import CONFIG
from daemon.errors import RequestError

T = TypeVar("T")
DEFAULT_BODY_TIMEOUT = 30.0  # only for apps built without a Config (tests of the readers alone)
RETRY_AFTER = 2.0
CHUNK = 256 * 1024


class BodyTimeout(RequestError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the request body stalled for {seconds:g} s", 408)


class UploadsBusy(RequestError):
    def __init__(self) -> None:
        super().__init__("too many uploads in progress, retry later", 503, retry_after=RETRY_AFTER)


def streams_to_disk(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Tag a handler whose body goes to disk as it arrives: it holds no share of the upload budget."""
    handler.streams_to_disk = True  # type: ignore[attr-defined]
    return handler


class UploadBudget:
    """Bytes of request bodies held by the requests being handled (limits.max_buffered_upload_bytes)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self.refused = 0

    def hold(self, size: int) -> None:
        if self.held + size > self.limit:
            self.refused += 1
            raise UploadsBusy()
        self.held += size
        self.peak = max(self.peak, self.held)

    def release(self, size: int) -> None:
        self.held -= size

    def stats(self) -> dict[str, int]:
        return {"held": self.held, "limit": self.limit, "peak": self.peak, "refused": self.refused}


UPLOADS = web.AppKey("upload_budget", UploadBudget)


def make_upload_budget_middleware(budget: UploadBudget, largest_body: int) -> Middleware:
    """Hold each body's share of ``budget`` while its request is handled (see the module docstring)."""

    @web.middleware
    async def upload_budget_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route_handler = getattr(request.match_info, "handler", None)
        if not request.body_exists or getattr(route_handler, "streams_to_disk", False):
            return await handler(request)
        declared = request.content_length
        share = largest_body if declared is None else min(declared, largest_body)
        budget.hold(share)
        try:
            return await handler(request)
        finally:
            budget.release(share)

    return upload_budget_middleware


def body_timeout(request: web.Request) -> float:
    config = request.app.get(CONFIG)
    return DEFAULT_BODY_TIMEOUT if config is None else config.limits.body_timeout


async def within(request: web.Request, read: Awaitable[T]) -> T:
    """``await read``, a read of the request body, or BodyTimeout when no byte comes in time."""
    seconds = body_timeout(request)
    try:
        async with asyncio.timeout(seconds):
            return await read
    except TimeoutError:
        raise BodyTimeout(seconds) from None


BODY = web.RequestKey("request_body", bytes)  # the body read_body returned


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (413 beyond), each chunk awaited within the timeout."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(limit, request.content_length)
    body = bytearray()
    while chunk := await within(request, request.content.read(CHUNK)):
        body += chunk
        if len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(limit, len(body))
    request[BODY] = data = bytes(body)  # kept for the audit record of small JSON mutations
    return data
