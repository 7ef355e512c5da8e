"""The three wire formats for errors, and how a route says which one it speaks.

- device API (DEVICE_API.md): ``{"code": <int>, "msg": <str>, "data": {}}``
- feature API (FEATURE_API.md): ``{"success": false, "message": <str>}``
- privacy API (PRIVACY_API.md) and everything else: ``{"error": <str>}``

A handler is tagged with ``@speaks(DEVICE)`` (etc.); middlewares that answer on a handler's behalf
(auth, domain errors through daemon/api/errors.py, the last-resort 500) look the tag up so every error a
client sees is in the format its API promises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

DEVICE = "device"
FEATURE = "feature"
PLAIN = "plain"

# Device API codes for conditions the original document does not cover (docs/API.md lists them).
CODE_INVALID_PARAMETER = 104900
CODE_UNAUTHORIZED = 104901
CODE_FORBIDDEN = 104902
CODE_NOT_FOUND = 104903
CODE_OVERLOADED = 104904
CODE_INTERNAL = 104905
CODE_LIVENESS_UNAVAILABLE = 104906
CODE_MODEL_MISMATCH = 104907
CODE_PAYLOAD_TOO_LARGE = 104908
CODE_TOO_MANY_REQUESTS = 104909
CODE_REQUEST_TIMEOUT = 104910

_STATUS_TO_DEVICE_CODE = {
    400: (CODE_INVALID_PARAMETER, "INVALID_PARAMETER"),
    401: (CODE_UNAUTHORIZED, "UNAUTHORIZED"),
    403: (CODE_FORBIDDEN, "FORBIDDEN"),
    404: (CODE_NOT_FOUND, "NOT_FOUND"),
    408: (CODE_REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
    413: (CODE_PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
    429: (CODE_TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS"),
    503: (CODE_OVERLOADED, "OVERLOADED"),
    500: (CODE_INTERNAL, "INTERNAL_ERROR"),
}


def device_code(http_status: int) -> tuple[int, str]:
    """The device code and name for a generic condition of this HTTP status."""
    return _STATUS_TO_DEVICE_CODE.get(http_status, (CODE_INTERNAL, "INTERNAL_ERROR"))


def speaks(family: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Tag a handler with the error format of its API family."""

    def tag(handler: Callable[..., Any]) -> Callable[..., Any]:
        handler.api_family = family  # type: ignore[attr-defined]
        return handler

    return tag


def family_of(request: web.Request) -> str:
    handler = getattr(request.match_info, "handler", None)
    return getattr(handler, "api_family", PLAIN)


def device_response(
    http_status: int, code: int, msg: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"code": code, "msg": msg, "data": {}}, status=http_status, headers=headers)


def device_ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"code": 0, "msg": "SUCCESS", "data": data})


def error_response(
    request: web.Request, http_status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error in the format of the request's API family (for generic conditions: auth, 503, 500)."""
    family = family_of(request)
    if family == DEVICE:
        code, name = device_code(http_status)
        return device_response(http_status, code, f"{name}:{message}", headers)
    if family == FEATURE:
        return web.json_response({"success": False, "message": message}, status=http_status, headers=headers)
    return web.json_response({"error": message}, status=http_status, headers=headers)
