"""The device family's table of domain errors (DEVICE_API.md, "Envelope and errors").

Handlers of the device API are tagged with ``device_endpoint``: they raise library, service, image
and parameter errors, and this table picks the HTTP status, the code and the msg; daemon/api/errors.py
holds it beside the other families' mappings and the request middleware applies it. Overloaded and
RequestError get the generic codes per status (503 + Retry-After, 413 …); anything else is a bug and
becomes the middleware's 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from daemon.api.families import (
    CODE_INVALID_PARAMETER,
    CODE_LIVENESS_UNAVAILABLE,
    CODE_MODEL_MISMATCH,
    CODE_NOT_FOUND,
    DEVICE,
    speaks,
)
from daemon.errors import FacegateError, ImageError
from daemon.library.errors import (
    FaceNotFound,
    GroupIdConflict,
    GroupInUse,
    GroupNameConflict,
    GroupNotFound,
    GroupOverLimit,
    ImageAlreadyExists,
    ImageNotFound,
)
from daemon.services.face_errors import BadQuality, LivenessUnavailable, ModelMismatch, NoFaceDetected

# The codes of the original document.
CODE_FACE_NOT_FOUND = 104200
CODE_BAD_QUALITY = 104201
CODE_FACE_ALREADY_EXIST = 104204
CODE_GROUP_NAME_CONFLICT = 104300
CODE_GROUP_OVER_LIMIT = 104302
CODE_GROUP_BEUSED = 104304
CODE_GROUP_ID_CONFLICT = 104310
CODE_GROUP_ID_NOT_EXIST = 104311


class InvalidParameter(FacegateError):
    """The request is malformed: bad JSON, a missing or mistyped field, a value out of range.

    The message is the reason the client reads after ``INVALID_PARAMETER:``.
    """


# exception type → (HTTP status, code, msg); first match wins, so subclasses come first.
_FIXED: tuple[tuple[type[FacegateError], int, int, str], ...] = (
    (NoFaceDetected, 400, CODE_FACE_NOT_FOUND, "FACE_NOT_FOUND"),
    (ImageAlreadyExists, 400, CODE_FACE_ALREADY_EXIST, "FACE_ALREADY_EXIST"),
    (GroupNameConflict, 400, CODE_GROUP_NAME_CONFLICT, "GROUP_NAME_CONFLICT"),
    (GroupOverLimit, 400, CODE_GROUP_OVER_LIMIT, "GROUP_OVER_LIMIT"),
    (GroupInUse, 400, CODE_GROUP_BEUSED, "GROUP_BEUSED"),
    (GroupIdConflict, 400, CODE_GROUP_ID_CONFLICT, "GROUP_ID_CONFLICT"),
    (GroupNotFound, 400, CODE_GROUP_ID_NOT_EXIST, "GROUP_ID_NOT_EXIST"),
    (FaceNotFound, 404, CODE_NOT_FOUND, "NOT_FOUND:unknown faceToken"),
    (ImageNotFound, 404, CODE_NOT_FOUND, "NOT_FOUND:unknown imageId"),
    (LivenessUnavailable, 400, CODE_LIVENESS_UNAVAILABLE, "LIVENESS_NOT_AVAILABLE"),
    (ModelMismatch, 500, CODE_MODEL_MISMATCH, "MODEL_MISMATCH"),
)


def device_error(exc: FacegateError) -> tuple[int, dict[str, Any]] | None:
    """(HTTP status, device envelope) for a domain error, or None when it is not in this table."""
    if isinstance(exc, InvalidParameter | ImageError):
        return _envelope(400, CODE_INVALID_PARAMETER, f"INVALID_PARAMETER:{exc}")
    if isinstance(exc, BadQuality):
        return _envelope(400, CODE_BAD_QUALITY, f"BAD_QUALITY:{','.join(exc.checks)}")
    for cls, status, code, msg in _FIXED:
        if isinstance(exc, cls):
            return _envelope(status, code, msg)
    return None


def _envelope(status: int, code: int, msg: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "msg": msg, "data": {}}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def device_endpoint(handler: Handler) -> Handler:
    """Tag a handler as speaking the device format: its domain errors are answered by this table."""
    return speaks(DEVICE)(handler)
