"""Device API 2.1–2.7: groups, their faces, and binding faces to them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.api.device_errors import device_endpoint
from daemon.api.device_faces import face_list_json
from daemon.api.device_keys import LIBRARY
from daemon.api.device_params import GROUP_NAME_BYTES, GROUP_TYPE_BYTES, paging, read_object
from daemon.api.families import device_ok
from daemon.appkeys import POOL
from daemon.library.types import DEFAULT_SCORE, BindResult


def bind_json(result: BindResult) -> dict[str, Any]:
    return {
        "totalCnt": result.total,
        "successCnt": result.success,
        "failCnt": result.fail,
        "failInfo": [{"groupId": g, "errorMsg": error} for g, error in result.fail_info],
    }


@device_endpoint
async def list_groups(request: web.Request) -> web.Response:
    """2.1 GET /api/faceGroups"""
    groups = await request.app[LIBRARY].list_groups()
    return device_ok(
        {
            "faceGroupList": [
                {
                    "groupId": g.group_id,
                    "groupType": g.type,
                    "groupName": g.name,
                    "groupScore": g.score,
                    "groupFaces": g.face_count,
                }
                for g in groups
            ]
        }
    )


@device_endpoint
async def create_group(request: web.Request) -> web.Response:
    """2.2 POST /api/faceGroups"""
    body = await read_object(request, request.app[POOL])
    gid = body.group_id()
    name = body.string("groupName", GROUP_NAME_BYTES, required=True, non_empty=True)
    type_ = body.string("groupType", GROUP_TYPE_BYTES) or ""
    score = body.integer("groupScore", 0, 100)
    assert name is not None
    await request.app[LIBRARY].create_group(gid, name, type_, DEFAULT_SCORE if score is None else score)
    return device_ok({})


@device_endpoint
async def delete_group(request: web.Request) -> web.Response:
    """2.3 DELETE /api/faceGroups/{groupId} with a JSON body {"deleteAllFace": 1..4}"""
    body = await read_object(request, request.app[POOL])
    mode = body.integer("deleteAllFace", 1, 4, required=True)
    assert mode is not None
    await request.app[LIBRARY].delete_group(request.match_info["groupId"], mode)
    return device_ok({})


@device_endpoint
async def group_faces(request: web.Request) -> web.Response:
    """2.4 GET /api/faceGroups/{groupId}?pageOffset=&pageSize="""
    offset, size = paging(request)
    total, faces = await request.app[LIBRARY].list_faces(offset, size, request.match_info["groupId"])
    return device_ok(face_list_json(total, faces))


@device_endpoint
async def bind(request: web.Request) -> web.Response:
    """2.5 POST /api/faceGroups/binding/{faceToken}"""
    body = await read_object(request, request.app[POOL])
    groups = body.string_list("faceGroupList")
    result = await request.app[LIBRARY].bind(request.match_info["faceToken"], groups)
    return device_ok(bind_json(result))


@device_endpoint
async def unbind(request: web.Request) -> web.Response:
    """2.6 DELETE /api/faceGroups/unbind/{faceToken} with a JSON body"""
    body = await read_object(request, request.app[POOL])
    groups = body.string_list("faceGroupList")
    result = await request.app[LIBRARY].unbind(request.match_info["faceToken"], groups)
    return device_ok(bind_json(result))


@device_endpoint
async def modify_group(request: web.Request) -> web.Response:
    """2.7 PUT /api/faceGroups"""
    body = await read_object(request, request.app[POOL])
    gid = body.string("groupId", 2**31, required=True, non_empty=True)
    assert gid is not None
    name = body.string("groupName", GROUP_NAME_BYTES, non_empty=True)
    type_ = body.string("groupType", GROUP_TYPE_BYTES)
    score = body.integer("groupScore", 0, 100)
    await request.app[LIBRARY].modify_group(gid, name, type_, score)
    return device_ok({})


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/api/faceGroups", list_groups)
    router.add_post("/api/faceGroups", create_group)
    router.add_put("/api/faceGroups", modify_group)
    router.add_post("/api/faceGroups/binding/{faceToken}", bind)
    router.add_delete("/api/faceGroups/unbind/{faceToken}", unbind)
    router.add_get("/api/faceGroups/{groupId}", group_faces)
    router.add_delete("/api/faceGroups/{groupId}", delete_group)
