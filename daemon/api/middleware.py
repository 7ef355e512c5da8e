"""Middlewares every route shares: a request id, the audit line, and the last-resort 500.

API families turn their own domain errors into their wire format inside their handlers (see
daemon/api/errors.py); whatever escapes that is a bug: logged here with the request id, answered 500
without internals.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("facegate.api")
audit = logging.getLogger("facegate.audit")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"


def new_request_id() -> str:
    return secrets.token_hex(6)


def make_request_middleware(access_log: bool):
    @web.middleware
    async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = new_request_id()
        request["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        except Exception:
            log.exception("unexpected error in %s %s [request %s]", request.method, request.path, request_id)
            response = web.json_response({"error": "internal error", "request_id": request_id}, status=500)
        finally:
            if access_log:
                audit.info(
                    "%s %s %s %d %.1fms principal=%s bytes=%s request=%s",
                    request.remote,
                    request.method,
                    request.path,
                    status,
                    (time.perf_counter() - started) * 1000,
                    request.get("principal", "-"),
                    request.content_length or 0,
                    request_id,
                )
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    return request_middleware
