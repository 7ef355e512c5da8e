"""The audit trail over HTTP: one middleware records every mutation, keyed by route; admins read it.

Recording happens here and only here: ``AUDITED_ROUTES`` maps (method, route pattern) to an action and
how to name its target (from the URL, the small JSON request body, or the answer). A route added later
is audited by adding a line to that table. Only authenticated requests are recorded (the request log
line has the rest), so unauthenticated floods cannot push real records out through the count limit.
The answer is sent after the record is committed.

``GET /api/admin/audit?since=&until=&limit=&before=``: records newest first as JSON, ``since``/
``until`` in Unix seconds (``until`` exclusive), ``limit`` 1..1000 (default 100), ``before`` a
record id to page back.

SCOPE NOTE (for the lead): ``ADMIN_ROUTES`` must require the admin scope once token scopes exist.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daemon.api.errors import error_answer
from daemon.api.middleware import Handler
from daemon.api.uploads import BODY
from daemon.appkeys import CONFIG, PRINCIPAL, REQUEST_ID
from daemon.errors import FacegateError
from daemon.services.audit import AuditLog
from daemon.textsafe import one_line

log = logging.getLogger(__name__)

AUDIT_PATH = "/api/admin/audit"
ADMIN_ROUTES = frozenset({AUDIT_PATH})  # -> admin scope (see module docstring)
AUDIT = web.AppKey("audit_log", AuditLog)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_BODY_PARSED = 64 * 1024  # JSON request bodies read for a target (group routes); never an image

Body = dict[str, Any]


@dataclass(frozen=True)
class Audited:
    action: str
    target: Callable[[web.Request, Body, Body], str]  # (request, request body, answer body)
    detail: Callable[[web.Request, Body, Body], dict[str, Any]] = lambda request, sent, answer: {}
    reads_body: bool = False  # the target or detail is in the (small JSON) request body


def _url(kind: str, name: str) -> Callable[[web.Request, Body, Body], str]:
    return lambda request, sent, answer: f"{kind}:{request.match_info.get(name, '')}"


def _data(answer: Body) -> Body:
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _group_fields(request: web.Request, sent: Body, answer: Body) -> dict[str, Any]:
    return {k: sent.get(k) for k in ("groupName", "groupType", "groupScore") if k in sent}


AUDITED_ROUTES: dict[tuple[str, str], Audited] = {
    ("POST", "/api/faces"): Audited(
        "face.enrol",
        lambda r, sent, answer: f"face:{_data(answer).get('faceToken', '')}",
        lambda r, sent, answer: {"imageId": _data(answer).get("imageId")},
    ),
    ("POST", "/api/faces/camera"): Audited(
        "face.enrol",
        lambda r, sent, answer: f"face:{_data(answer).get('faceToken', '')}",
        lambda r, sent, answer: {"imageId": _data(answer).get("imageId"), "source": "camera"},
    ),
    ("PATCH", "/api/faces/faceToken/{faceToken}"): Audited(
        "face.modify", _url("face", "faceToken"), lambda r, sent, a: {"fields": sorted(sent)}, True
    ),
    ("DELETE", "/api/faces/{faceToken}"): Audited("face.delete", _url("face", "faceToken")),
    ("DELETE", "/api/faces/image/{imageId}"): Audited("image.delete", _url("image", "imageId")),
    ("DELETE", "/api/faces/facesLib"): Audited("library.reset", lambda r, s, a: "library"),
    ("POST", "/api/faceGroups"): Audited(
        "group.create", lambda r, sent, a: f"group:{sent.get('groupId', '')}", _group_fields, True
    ),
    ("PUT", "/api/faceGroups"): Audited(
        "group.modify", lambda r, sent, a: f"group:{sent.get('groupId', '')}", _group_fields, True
    ),
    ("DELETE", "/api/faceGroups/{groupId}"): Audited(
        "group.delete",
        _url("group", "groupId"),
        lambda r, sent, a: {"deleteAllFace": sent.get("deleteAllFace")},
        True,
    ),
    ("POST", "/api/faceGroups/binding/{faceToken}"): Audited(
        "face.bind", _url("face", "faceToken"), lambda r, sent, a: {"groups": sent.get("faceGroupList")}, True
    ),
    ("DELETE", "/api/faceGroups/unbind/{faceToken}"): Audited(
        "face.unbind",
        _url("face", "faceToken"),
        lambda r, sent, a: {"groups": sent.get("faceGroupList")},
        True,
    ),
    ("POST", "/api/admin/library/import"): Audited(
        "library.import", lambda r, s, a: "library", lambda r, s, a: {"mode": r.query.get("mode", "merge")}
    ),
    ("DELETE", "/api/v1/tasks/{task_id}"): Audited("task.delete", _url("task", "task_id")),
    # A signed stream URL is a credential: who issued one is recorded.
    ("POST", "/api/stream/links"): Audited("stream.link.create", lambda r, s, a: "stream"),
    # The door's runtime settings: a configuration change without a restart.
    ("PUT", "/api/door/settings"): Audited(
        "config.door.change", lambda r, s, a: "door", lambda r, sent, a: {"keys": sorted(sent)}, True
    ),
    ("DELETE", "/api/door/settings"): Audited("config.door.reset", lambda r, s, a: "door"),
}


def setup_audit_api(app: web.Application) -> None:
    """The audit log (its file, retention), its recording middleware and the admin read route."""
    config = app[CONFIG]
    app[AUDIT] = AuditLog(config.audit_path, config.audit.keep_days, config.audit.max_records)
    app.cleanup_ctx.append(_audit_ctx)
    app.middlewares.append(audit_middleware)
    app.router.add_get(AUDIT_PATH, read_audit)


async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[AUDIT].start()
    yield
    await app[AUDIT].close()


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    key = (request.method, resource.canonical if resource is not None else "")
    audited = AUDITED_ROUTES.get(key)
    if audited is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await _record(request, key, audited, exc.status, None)
        raise
    except FacegateError as exc:  # answered by the outer middleware in the route family's format
        answer = error_answer(request, exc)
        await _record(request, key, audited, answer.status if answer else 500, answer)
        raise
    except Exception:
        await _record(request, key, audited, 500, None)
        raise
    await _record(request, key, audited, response.status, response)
    return response


async def _record(
    request: web.Request,
    key: tuple[str, str],
    audited: Audited,
    status: int,
    response: web.StreamResponse | None,
) -> None:
    principal = request.get(PRINCIPAL)
    if principal is None:
        return
    try:  # whatever the request held, recording never turns the answer into a 500
        answer = _json(response.body) if isinstance(response, web.Response) else {}
        # The body as the handler read it (daemon/api/uploads.read_body), for the routes that need it.
        sent = _json(request.get(BODY)) if audited.reads_body else {}
        code = answer.get("code")
        await request.app[AUDIT].record(
            action=audited.action,
            target=one_line(audited.target(request, sent, answer)),
            principal=one_line(principal),
            request_id=request.get(REQUEST_ID, ""),
            status=status,
            code=code if isinstance(code, int) else None,
            detail=audited.detail(request, sent, answer),
        )
    except Exception:  # the mutation is done; a lost record must be loud, not a 500
        log.exception("could not write the audit record of request %s", request.get(REQUEST_ID, "-"))


def _json(body: Any) -> Body:
    if not isinstance(body, bytes | bytearray) or len(body) > MAX_BODY_PARSED:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # hostile bodies: nesting deeper than the parser allows
        return {}
    return value if isinstance(value, dict) else {}


async def read_audit(request: web.Request) -> web.Response:
    """GET /api/admin/audit"""
    try:
        since = _number(request, "since")
        until = _number(request, "until")
        before = _number(request, "before")
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if not 1 <= limit <= MAX_LIMIT:
        return web.json_response({"error": f"limit must be 1..{MAX_LIMIT}"}, status=400)
    records = await request.app[AUDIT].query(
        since=since, until=until, limit=limit, before=None if before is None else int(before)
    )
    return web.json_response({"records": [r.as_json() for r in records], "count": len(records)})


def _number(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number (Unix seconds)") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite")
    return value
