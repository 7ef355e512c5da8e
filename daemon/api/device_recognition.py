"""Device API 3.1 (1:1 compare) and 3.2 (1:N search)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemon.api.device_errors import device_endpoint
from daemon.api.device_faces import b64
from daemon.api.device_keys import RECOGNITION
from daemon.api.device_params import read_object
from daemon.api.families import device_ok
from daemon.appkeys import POOL
from daemon.services.recognition import MAX_TOP_N, Detection, SearchHit


def detection_json(d: Detection, with_quality: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "left": d.left,
        "top": d.top,
        "right": d.right,
        "bottom": d.bottom,
        "roll": d.roll,
        "yaw": d.yaw,
        "pitch": d.pitch,
        "blurness": d.blurness,
    }
    if with_quality:
        data["quality"] = d.quality
    if d.liveness_score is not None:  # only when livenessEnabled was true
        data["livenessScore"] = d.liveness_score
        data["liveness"] = d.liveness
    return data


def hit_json(hit: SearchHit) -> dict[str, Any]:
    face = hit.face
    return {
        "group": [{"groupId": g} for g in face.group_ids],
        "searchScore": hit.score,
        "faceToken": face.face_token,
        "description": face.description,
        "imageUrl": b64(face.crop_jpeg),
    }


@device_endpoint
async def compare(request: web.Request) -> web.Response:
    """3.1 POST /api/face/compare"""
    body = await read_object(request, request.app[POOL])
    image1, image2 = body.image("image1"), body.image("image2")
    liveness = body.boolean("livenessEnabled")
    result = await request.app[RECOGNITION].compare(image1, image2, liveness)
    return device_ok(
        {
            "compareScore": result.score,
            "detectionResult1": detection_json(result.first, with_quality=False),
            "detectionResult2": detection_json(result.second, with_quality=False),
        }
    )


@device_endpoint
async def search(request: web.Request) -> web.Response:
    """3.2 POST /api/face/search"""
    body = await read_object(request, request.app[POOL])
    image = body.image("image")
    groups = body.string_list("group")
    top_n = body.integer("topN", 1, MAX_TOP_N)
    liveness = body.boolean("livenessEnabled")
    feature_upload = body.boolean("featureUpload")
    result = await request.app[RECOGNITION].search(
        image, groups, 1 if top_n is None else top_n, liveness, feature_upload
    )
    data: dict[str, Any] = {"detectionResult": detection_json(result.detection, with_quality=True)}
    for rank in range(1, MAX_TOP_N + 1):
        data[f"top{rank}"] = hit_json(result.hits[rank - 1]) if rank <= len(result.hits) else {}
    if result.feature is not None:
        data["feature"] = result.feature
    return device_ok(data)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/face/compare", compare)
    app.router.add_post("/api/face/search", search)
