"""The feature-vector API (FEATURE_API.md): /api/extract_feature, /api/compare_features,
/api/compare_image_feature.

Answers are ``{"success": true|false, "message": ..., ...}`` with ``processing_time`` in seconds.
Uploads are read part by part with a byte limit per field, so a large upload is refused while it
arrives instead of after it has been buffered; decoding, detection and embedding run in the worker pool.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from daemon.api import multipart
from daemon.api.errors import feature_answer
from daemon.api.families import FEATURE, speaks
from daemon.api.multipart import FieldSpec
from daemon.api.uploads import within
from daemon.appkeys import CONFIG, POOL
from daemon.errors import FacegateError, ImageError, RequestError
from daemon.services import features
from daemon.services.features import FeatureSettings

FEATURES = web.AppKey("feature_settings", FeatureSettings)

MAX_JSON_BYTES = 256 * 1024  # two 128-float vectors are ~6 kB of JSON
MAX_FEATURE_FIELD_BYTES = 64 * 1024
MAX_MODEL_FIELD_BYTES = 256
CHUNK = 64 * 1024


class BadRequest(RequestError):
    """The request itself is malformed (not multipart, missing field, bad JSON): answered 400."""


def setup_feature_api(app: web.Application) -> None:
    app[FEATURES] = FeatureSettings.from_config(app[CONFIG])
    app.router.add_post("/api/extract_feature", extract_feature)
    app.router.add_post("/api/compare_features", compare_features)
    app.router.add_post("/api/compare_image_feature", compare_image_feature)


Handler = Callable[[web.Request], Awaitable[dict[str, Any]]]


def feature_route(fn: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Time the request; its domain errors are answered by the feature family's mapping
    (daemon/api/errors.py), with the processing time too. What the mapping does not declare (a bug)
    is left to the shared middleware, which answers 500 in the same format (the handler is tagged).
    """

    @speaks(FEATURE)
    async def handler(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await fn(request)
            status = 200
        except FacegateError as exc:
            answer = feature_answer(exc)
            if answer is None or answer[0] >= 500:
                raise
            status, body = answer
        body["processing_time"] = round(time.perf_counter() - started, 4)
        return web.json_response(body, status=status)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


@feature_route
async def extract_feature(request: web.Request) -> dict[str, Any]:
    """POST /api/extract_feature: multipart ``image`` → the largest face's descriptor."""
    settings = request.app[FEATURES]
    form = await read_form(request, {"image": settings.limits.max_bytes})
    image = _required(form, "image")
    result = await request.app[POOL].run(lambda engine: features.extract(engine, image, settings))
    passed = not result.quality_failed
    message = "feature extracted"
    if not passed:
        message += "; the face fails the enrollment quality gate: " + ",".join(result.quality_failed)
    left, top, right, bottom = result.rect
    return {
        "success": True,
        "message": message,
        "feature": result.feature,
        "feature_dim": len(result.feature),
        "model": result.model_id,
        "quality_passed": passed,
        "quality_failed": result.quality_failed,
        "rect": {"left": left, "top": top, "right": right, "bottom": bottom},
    }


@feature_route
async def compare_features(request: web.Request) -> dict[str, Any]:
    """POST /api/compare_features: JSON ``feature1``, ``feature2`` (and optional ``model``)."""
    settings = request.app[FEATURES]
    body = await read_json(request, MAX_JSON_BYTES)
    features.check_model(body.get("model"), settings.model_id)
    first = features.parse_feature(body.get("feature1"), "feature1")
    second = features.parse_feature(body.get("feature2"), "feature2")
    return _comparison(features.compare(settings, first, second), settings.model_id)


@feature_route
async def compare_image_feature(request: web.Request) -> dict[str, Any]:
    """POST /api/compare_image_feature: multipart ``image`` + ``feature`` (JSON string), ``model``."""
    settings = request.app[FEATURES]
    form = await read_form(
        request,
        {
            "image": settings.limits.max_bytes,
            "feature": MAX_FEATURE_FIELD_BYTES,
            "model": MAX_MODEL_FIELD_BYTES,
        },
    )
    image = _required(form, "image")
    value = _loads(_required(form, "feature"), "feature is not a JSON array")
    model = _text(form["model"], "model") if "model" in form else None
    features.check_model(model, settings.model_id)
    feature = features.parse_feature(value, "feature")
    comparison, failed = await request.app[POOL].run(
        lambda engine: features.compare_with_image(engine, image, feature, model, settings)
    )
    body = _comparison(comparison, settings.model_id)
    body["quality_passed"] = not failed
    body["quality_failed"] = failed
    return body


def _comparison(result: features.Comparison, model_id: str) -> dict[str, Any]:
    return {
        "success": True,
        "message": "compared",
        "similarity": result.similarity,
        "is_same_person": result.is_same_person,
        "threshold": result.threshold,
        "distance": result.distance,
        "model": model_id,
    }


def _loads(raw: bytes | bytearray, what: str) -> Any:
    """JSON from a client: any failure (bad UTF-8, syntax, an integer of thousands of digits, nesting
    deeper than the parser's recursion limit) is a BadRequest naming ``what``."""
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digits over the limit
        raise BadRequest(f"{what}: {exc}") from None
    except RecursionError:
        raise BadRequest(f"{what}: nested too deeply") from None


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, read with a byte limit."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(f"request body is {request.content_length} bytes, the limit is {limit}")
    raw = bytearray()
    while chunk := await within(request, request.content.read(CHUNK)):
        raw += chunk
        if len(raw) > limit:
            raise BadRequest(f"request body exceeds the limit of {limit} bytes")
    if not raw:
        raise BadRequest("request body is empty: expected a JSON object with feature1 and feature2")
    body = _loads(raw, "request body is not valid JSON")
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with feature1 and feature2")
    return body


async def read_form(request: web.Request, limits: dict[str, int]) -> dict[str, bytes]:
    """The multipart fields named in limits, each read up to its byte limit; other parts are read
    and dropped, the whole body counting against server.max_request_bytes (413 beyond it).

    A field sent twice is refused: which of two images should be used is not ours to guess.
    """
    specs = {name: FieldSpec(limit) for name, limit in limits.items()}
    budget = request.app[CONFIG].server.max_request_bytes
    try:
        return await multipart.read_form(request, specs, budget)
    except multipart.NotMultipart as exc:
        raise BadRequest(
            f"expected multipart/form-data with a file field 'image', got {exc.content_type!r}"
        ) from None
    except multipart.BodyTooLarge as exc:
        raise web.HTTPRequestEntityTooLarge(exc.budget, exc.size) from None
    except multipart.FieldTooLong as exc:
        raise _too_long(exc.name, exc.cap) from None
    except multipart.FormError as exc:  # a field given twice, a nested or malformed body
        raise BadRequest(str(exc)) from None


def _too_long(name: str, limit: int) -> Exception:
    if name == "image":
        return ImageError(f"image exceeds the limit of {limit} bytes ({limit / 2**20:.1f} MB)", "too_large")
    return BadRequest(f"field {name!r} exceeds the limit of {limit} bytes")


def _required(form: dict[str, bytes], name: str) -> bytes:
    if name not in form:
        what = "file field 'image'" if name == "image" else f"field {name!r}"
        raise BadRequest(f"missing {what} in the multipart form")
    return form[name]


def _text(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest(f"field {name!r} is not UTF-8 text") from None
