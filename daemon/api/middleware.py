"""Middlewares every route shares: a request id, the audit line, and the last-resort 500.

Handlers raise domain errors (daemon.errors.FacegateError); they are answered here through the
route family's declared mapping (daemon/api/errors.py). Whatever a family does not declare is a bug:
logged here with the request id, answered 500 in the family's format without internals.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from daemon.api.errors import error_answer
from daemon.api.families import error_response
from daemon.appkeys import PRINCIPAL, REQUEST_ID
from daemon.errors import FacegateError
from daemon.textsafe import one_line

log = logging.getLogger("facegate.api")
audit = logging.getLogger("facegate.audit")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"


MAX_LOGGED_CHARS = 512


def loggable(text: str) -> str:
    """Client-controlled text made safe for one log line (daemon/textsafe.py: control characters and
    anything not printable escaped, backslashes doubled), cut at MAX_LOGGED_CHARS."""
    return one_line(text, MAX_LOGGED_CHARS)


def new_request_id() -> str:
    return secrets.token_hex(6)


def make_request_middleware(access_log: bool) -> Middleware:
    @web.middleware
    async def request_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The request line: every client-supplied value through one_line (no CR/LF or control
        # character reaches the log); upload file names and bodies are never logged.
        request_id = new_request_id()
        request[REQUEST_ID] = request_id
        started = time.perf_counter()
        status = 500
        try:
            response = await _answer(request, handler, request_id)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        finally:
            if access_log:
                audit.info(
                    "%s %s %s %d %.1fms principal=%s bytes=%s request=%s",
                    request.remote,
                    loggable(request.method),
                    loggable(request.raw_path),
                    status,
                    (time.perf_counter() - started) * 1000,
                    one_line(request.get(PRINCIPAL, "-")),
                    request.content_length or 0,
                    request_id,
                )
        if not response.prepared:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    return request_middleware


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    """The handler's response, or the family-formatted answer for the conditions every route shares."""
    try:
        return await handler(request)
    except FacegateError as exc:
        response = error_answer(request, exc)
        if response is not None:
            return response
        log.error(
            "undeclared %s in %s %s [request %s]",
            type(exc).__name__,
            loggable(request.method),
            loggable(request.raw_path),
            request_id,
            exc_info=exc,
        )
        return error_response(request, 500, f"internal error (request id {request_id})")
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(request, 413, f"request body too large ({exc.text})")
    except web.HTTPException:
        raise
    except Exception:  # the last resort: a bug, logged with the request id, answered without internals
        log.exception(
            "unexpected error in %s %s [request %s]",
            loggable(request.method),
            loggable(request.raw_path),
            request_id,
        )
        return error_response(request, 500, f"internal error (request id {request_id})")
