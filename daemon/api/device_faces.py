"""Device API 1.1–1.7: registering, listing, reading and deleting faces and original images."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aiohttp import web

from daemon.api.device_errors import InvalidParameter, device_endpoint
from daemon.api.device_keys import ENROLLMENT, LIBRARY
from daemon.api.device_params import (
    DESCRIPTION_BYTES,
    GENDER_BYTES,
    NAME_BYTES,
    paging,
    read_object,
    utf8_len,
)
from daemon.api.families import device_ok
from daemon.api.stream import STREAM
from daemon.appkeys import POOL
from daemon.library.types import FaceSummary, Rect
from daemon.services.enrollment import EnrollRequest

# Base64 and JSON of larger payloads (an original image: up to 4 MB) are built off the event loop.
ENCODE_ON_LOOP_BYTES = 256 * 1024


def rect_json(rect: Rect | tuple[int, int, int, int]) -> dict[str, int]:
    left, top, right, bottom = rect
    return {"left": int(left), "top": int(top), "right": int(right), "bottom": int(bottom)}


def face_list_json(total: int, faces: list[FaceSummary]) -> dict[str, Any]:
    """``data`` of 1.2 and 2.4; ``imgId`` repeats ``imageId`` (the original spells it both ways)."""
    return {
        "totalFaces": total,
        "face": [
            {
                "id": f.id,
                "imageId": f.image_id,
                "imgId": f.image_id,
                "faceToken": f.face_token,
                "description": f.description,
                "name": f.name,
                "gender": f.gender,
            }
            for f in faces
        ],
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _ok_with_blob(build: Any, blob_size: int) -> web.Response:
    """device_ok for a payload that embeds a blob as base64: large ones are encoded in a thread."""
    if blob_size <= ENCODE_ON_LOOP_BYTES:
        return device_ok(build())

    def encode() -> bytes:
        return json.dumps({"code": 0, "msg": "SUCCESS", "data": build()}).encode()

    body = await asyncio.to_thread(encode)
    return web.Response(body=body, content_type="application/json")


@device_endpoint
async def register_face(request: web.Request) -> web.Response:
    """1.1 POST /api/faces"""
    body = await read_object(request, request.app[POOL])
    enroll = EnrollRequest(
        image=body.image("image"),
        description=body.string("description", DESCRIPTION_BYTES) or "",
        image_md5=body.image_md5(),
        name=body.string("name", NAME_BYTES) or "",
        gender=body.string("gender", GENDER_BYTES) or "",
    )
    record = await request.app[ENROLLMENT].enroll(enroll)
    return device_ok(
        {
            "id": record.id,
            "imageId": record.image_id,
            "faceToken": record.face_token,
            "rect": rect_json(record.rect),
        }
    )


@device_endpoint
async def register_from_camera(request: web.Request) -> web.Response:
    """Extension: POST /api/faces/camera — register the largest face of the camera's newest frame.

    For installers standing at the door: the frame never leaves the device (the stream only ever
    publishes blurred frames); it is stored as the face's original, as an upload would be."""
    body = await read_object(request, request.app[POOL])
    name = body.string("name", NAME_BYTES) or ""
    description = body.string("description", DESCRIPTION_BYTES) or ""
    gender = body.string("gender", GENDER_BYTES) or ""
    stream = request.app.get(STREAM)
    capture = stream.pipeline.capture if stream is not None and stream.pipeline is not None else None
    if capture is None:
        raise InvalidParameter("no camera configured (camera.source)")
    frame = capture.latest()
    if frame is None:
        raise InvalidParameter(f"the camera has no frame ({capture.state.value})")
    record = await request.app[ENROLLMENT].enroll_frame(frame.rgb, name, description, gender)
    return device_ok(
        {
            "id": record.id,
            "imageId": record.image_id,
            "faceToken": record.face_token,
            "rect": rect_json(record.rect),
        }
    )


@device_endpoint
async def list_faces(request: web.Request) -> web.Response:
    """1.2 GET /api/faces?pageOffset=&pageSize= (extension: &name= filters by a part of the name)"""
    offset, size = paging(request)
    name = request.query.get("name") or None
    if name is not None and utf8_len(name) > NAME_BYTES:
        raise InvalidParameter(f"name is {utf8_len(name)} bytes, the limit is {NAME_BYTES} bytes (UTF-8)")
    total, faces = await request.app[LIBRARY].list_faces(offset, size, name=name)
    return device_ok(face_list_json(total, faces))


@device_endpoint
async def update_face(request: web.Request) -> web.Response:
    """Extension: PATCH /api/faces/faceToken/{faceToken} with any of name, description, gender."""
    body = await read_object(request, request.app[POOL])
    name = body.string("name", NAME_BYTES)
    description = body.string("description", DESCRIPTION_BYTES)
    gender = body.string("gender", GENDER_BYTES)
    if name is None and description is None and gender is None:
        raise InvalidParameter("nothing to change: send name, description or gender")
    await request.app[LIBRARY].update_face(request.match_info["faceToken"], name, description, gender)
    return device_ok({})


@device_endpoint
async def get_face_crop(request: web.Request) -> web.Response:
    """Extension: GET /api/faces/faceToken/{faceToken}/crop.jpg — the stored face crop as JPEG bytes
    (what 1.5 returns as base64), for image tags and thumbnails."""
    face = await request.app[LIBRARY].get_face(request.match_info["faceToken"])
    return web.Response(
        body=face.crop_jpeg, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"}
    )


@device_endpoint
async def delete_face(request: web.Request) -> web.Response:
    """1.3 DELETE /api/faces/{faceToken}"""
    await request.app[LIBRARY].delete_face(request.match_info["faceToken"])
    return device_ok({})


@device_endpoint
async def delete_image(request: web.Request) -> web.Response:
    """1.4 DELETE /api/faces/image/{imageId}"""
    await request.app[LIBRARY].delete_image(request.match_info["imageId"])
    return device_ok({})


@device_endpoint
async def get_face(request: web.Request) -> web.Response:
    """1.5 GET /api/faces/faceToken/{faceToken}"""
    face = await request.app[LIBRARY].get_face(request.match_info["faceToken"])

    def build() -> dict[str, Any]:
        return {
            "imageId": face.image_id,
            "description": face.description,
            "name": face.name,
            "gender": face.gender,
            "rect": rect_json(face.rect),
            "faceGroupList": [{"groupId": g} for g in face.group_ids],
            "image": b64(face.crop_jpeg),
        }

    return await _ok_with_blob(build, len(face.crop_jpeg))


@device_endpoint
async def get_image(request: web.Request) -> web.Response:
    """1.6 GET /api/faces/image/{imageId}"""
    image = await request.app[LIBRARY].get_image(request.match_info["imageId"])

    def build() -> dict[str, Any]:
        return {"image": b64(image.original), "faceToken": list(image.face_tokens)}

    return await _ok_with_blob(build, len(image.original))


@device_endpoint
async def reset_library(request: web.Request) -> web.Response:
    """1.7 DELETE /api/faces/facesLib"""
    await request.app[LIBRARY].reset()
    return device_ok({})


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/api/faces", register_face)
    router.add_post("/api/faces/camera", register_from_camera)
    router.add_get("/api/faces", list_faces)
    # Before /api/faces/{faceToken}, which would otherwise take "facesLib" for a token.
    router.add_delete("/api/faces/facesLib", reset_library)
    router.add_delete("/api/faces/image/{imageId}", delete_image)
    router.add_get("/api/faces/image/{imageId}", get_image)
    router.add_get("/api/faces/faceToken/{faceToken}", get_face)
    router.add_patch("/api/faces/faceToken/{faceToken}", update_face)
    router.add_get("/api/faces/faceToken/{faceToken}/crop.jpg", get_face_crop)
    router.add_delete("/api/faces/{faceToken}", delete_face)
