"""The one declared mapping per API family: a domain error (daemon.errors.FacegateError) → its answer.

Handlers raise domain errors and never build error answers themselves; the request middleware
(daemon/api/middleware.py) looks up the route's family (daemon/api/families.py) and answers through
``MAPPINGS``. Each mapping returns (HTTP status, JSON body), or None for an error it does not declare:
that one, like anything that is not a FacegateError, is a bug the middleware logs and answers 500 in
the family's format (daemon/api/families.py, error_response).

- device (DEVICE_API.md): ``{"code", "msg", "data": {}}``; codes in daemon/api/device_errors.py.
- feature (FEATURE_API.md): ``{"success": false, "message"}``; bad input is 400.
- plain (PRIVACY_API.md, tasks, stream, health): ``{"error"}``; the seed's two strings for images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from daemon.api.device_errors import InvalidParameter, device_error
from daemon.api.families import DEVICE, FEATURE, PLAIN, device_code, family_of
from daemon.errors import FacegateError, ImageError, Overloaded, RequestError
from daemon.services.features import FeatureInputError, NoQualifiedFace
from daemon.services.tasks import TaskNotFound, TaskNotReady
from daemon.services.video_blur import VideoError

Answer = tuple[int, dict[str, Any]]

NO_IMAGE = "No image provided"
INVALID_IMAGE = "Invalid image format"


def _status_of(exc: FacegateError) -> int | None:
    """The status of the errors every family answers alike (the message is the family's to format)."""
    if isinstance(exc, Overloaded):
        return 503
    if isinstance(exc, RequestError):
        return exc.status
    return None


def device_answer(exc: FacegateError) -> Answer | None:
    """DEVICE_API.md: the fixed table of device_errors.py, then the generic codes per status."""
    mapped = device_error(exc)
    if mapped is not None:
        return mapped
    status = _status_of(exc)
    if status is None:
        return None
    return _device(status, "busy, retry later" if isinstance(exc, Overloaded) else str(exc))


def _device(status: int, message: str) -> Answer:
    code, name = device_code(status)
    return status, {"code": code, "msg": f"{name}:{message}", "data": {}}


def feature_answer(exc: FacegateError) -> Answer | None:
    """FEATURE_API.md: bad input (images included) is 400 with the reason."""
    status = _status_of(exc)
    if status is None:
        if not isinstance(exc, FeatureInputError | NoQualifiedFace | ImageError | InvalidParameter):
            return None
        status = 400
    message = "busy, retry later" if isinstance(exc, Overloaded) else str(exc)
    return status, {"success": False, "message": message}


def plain_answer(exc: FacegateError) -> Answer | None:
    """PRIVACY_API.md and the routes beside it: ``{"error": ...}``."""
    if isinstance(exc, ImageError):
        status, message = image_error(exc)
        return status, {"error": message}
    known = _status_of(exc)
    if known is not None:
        return known, {"error": "busy, retry later" if isinstance(exc, Overloaded) else str(exc)}
    for cls, status in ((TaskNotFound, 404), (TaskNotReady, 409), (VideoError, 400)):
        if isinstance(exc, cls):
            return status, {"error": str(exc)}
    return None


def image_error(exc: ImageError) -> tuple[int, str]:
    """Status and message for a bad upload: the seed's two strings where they apply; an image over a
    limit is 413 so a client can tell "shrink it" from "broken file"."""
    if exc.reason == "empty":
        return 400, NO_IMAGE
    if exc.reason in ("too_large", "too_many_pixels", "too_much_memory"):
        return 413, f"Image too large: {exc}"
    return 400, INVALID_IMAGE


MAPPINGS: dict[str, Callable[[FacegateError], Answer | None]] = {
    DEVICE: device_answer,
    FEATURE: feature_answer,
    PLAIN: plain_answer,
}


def retry_headers(exc: BaseException) -> dict[str, str]:
    retry = getattr(exc, "retry_after", None)
    return {} if retry is None else {"Retry-After": str(max(1, round(retry)))}


def error_answer(request: web.Request, exc: FacegateError) -> web.Response | None:
    """The answer of the request's family for a domain error; None when the family does not declare it."""
    answer = MAPPINGS[family_of(request)](exc)
    if answer is None:
        return None
    status, body = answer
    return web.json_response(body, status=status, headers=retry_headers(exc))
