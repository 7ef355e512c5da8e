"""The privacy (face blurring) API of PRIVACY_API.md: /api/v1/blur-faces, /process, /detect.

Integrators already call these paths, so the wire format is the seed service's: multipart ``image``,
JPEG answers, errors as ``{"error": <str>}`` with "No image provided" and "Invalid image format" for
the two cases its clients know. Decisions of ours (docs/API.md, Privacy API): an upload over
``privacy.max_bytes`` or ``privacy.max_pixels`` is 413, not 400, so a client can tell "shrink it" from
"broken file"; WebP and BMP are accepted (sniffed from the bytes, never from the filename).

The body is read part by part (never buffered whole, whatever server.max_request_bytes says) with a
byte limit, and hashed while it arrives: the cache key costs no extra pass over the bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daemon.api import multipart
from daemon.api.errors import NO_IMAGE
from daemon.api.families import PLAIN, speaks
from daemon.api.multipart import FieldSpec
from daemon.appkeys import CONFIG, POOL, PRINCIPAL
from daemon.errors import RequestError
from daemon.services.privacy import BlurOptions, Caller, Output, PrivacyResult, PrivacyService
from daemon.vision.blur import BLUR_METHODS

PRIVACY = web.AppKey("privacy_service", PrivacyService)

MAX_FIELD_BYTES = 256  # show_box, method
FORM_OVERHEAD = 64 * 1024  # part headers and small fields on top of the image
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class Rejected(RequestError):
    """A request answered with an error status and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status)


def setup_privacy_api(app: web.Application) -> None:
    config = app[CONFIG]
    app[PRIVACY] = PrivacyService(
        config.privacy, app[POOL], config.workers.count, config.limits.max_decode_bytes
    )
    for path, handler in ROUTES.items():
        app.router.add_post(path, handler)


@dataclass
class Upload:
    data: bytes | bytearray  # not copied into bytes on the event loop
    digest: str  # sha256, hex
    fields: dict[str, str]


@speaks(PLAIN)
async def blur_faces(request: web.Request) -> web.Response:
    """POST /api/v1/blur-faces: multipart image [show_box=true] [method] → the blurred JPEG."""
    return await _handle(request, "blur-faces", default_show_box=True, json_only=False)


@speaks(PLAIN)
async def process(request: web.Request) -> web.Response:
    """POST /process: the blurred JPEG with X-Faces-Count, or with Accept: application/json the faces."""
    return await _handle(request, "process", default_show_box=False, json_only=False)


@speaks(PLAIN)
async def detect(request: web.Request) -> web.Response:
    """POST /detect: the faces as JSON, never an image (is there anything to blur?)."""
    return await _handle(request, "detect", default_show_box=False, json_only=True)


async def _handle(
    request: web.Request, operation: str, default_show_box: bool, json_only: bool
) -> web.Response:
    service = request.app[PRIVACY]
    upload = await read_upload(request, service.config.max_bytes)
    output: Output = "json" if json_only or wants_json(request.headers.get("Accept", "")) else "image"
    options = BlurOptions(
        output=output,
        method=_method(upload.fields.get("method"), service.config.method),
        show_box=_flag(upload.fields.get("show_box"), default_show_box),
        accurate=_flag(upload.fields.get("accurate"), False, "accurate"),
    )
    caller = Caller(request.remote or "-", request.get(PRINCIPAL, "-"), operation)
    answer = await service.process(upload.data, upload.digest, options, caller)
    result = answer.result
    headers = {"X-Faces-Count": str(len(result.faces))}  # no X-Cache: whether it was cached is not told
    if output == "json":
        return web.json_response(faces_json(result, answer.elapsed_ms), headers=headers)
    return web.Response(body=result.jpeg, content_type="image/jpeg", headers=headers)


def faces_json(result: PrivacyResult, elapsed_ms: float) -> dict[str, Any]:
    return {
        "faces": [
            {"bbox": list(f.bbox), "confidence": f.confidence, "blur_radius": f.blur_radius}
            for f in result.faces
        ],
        "total_count": len(result.faces),
        "processing_time_ms": round(elapsed_ms),
    }


def wants_json(accept: str) -> bool:
    """Whether an Accept header prefers JSON over an image (q-values honoured; */* counts for the image)."""
    best_json, best_image = 0.0, 0.0
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == "application/json":
            best_json = max(best_json, q)
        elif media in ("image/jpeg", "image/*"):
            best_image = max(best_image, q)
    return best_json > 0 and best_json >= best_image


def _flag(value: str | None, default: bool, name: str = "show_box") -> bool:
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Rejected(400, f"Invalid {name} {value!r}: use true or false")


def _method(value: str | None, default: str) -> str:
    if value is None or not value.strip():
        return default
    method = value.strip().lower()
    if method not in BLUR_METHODS:
        raise Rejected(400, f"Invalid method {value!r}: use one of {', '.join(BLUR_METHODS)}")
    return method


async def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """The ``image`` part (at most max_bytes, hashed as it arrives) and the small text fields.

    Other parts are read and dropped; the whole body may hold max_bytes plus FORM_OVERHEAD (413
    beyond). A second ``image`` part is refused.
    """
    image = bytearray()
    digest = hashlib.sha256()

    def take(chunk: bytes) -> None:
        digest.update(chunk)
        image.extend(chunk)

    specs = {
        "image": FieldSpec(max_bytes, open=lambda _part: take),
        "show_box": FieldSpec(MAX_FIELD_BYTES, once=False),
        "method": FieldSpec(MAX_FIELD_BYTES, once=False),
        "accurate": FieldSpec(MAX_FIELD_BYTES, once=False),
    }
    budget = max_bytes + FORM_OVERHEAD
    too_large = f"Image too large: the limit is {max_bytes} bytes"
    try:
        fields = await multipart.read_form(request, specs, budget)
    except multipart.NotMultipart:
        raise Rejected(400, NO_IMAGE) from None
    except multipart.BodyTooLarge as exc:
        if exc.declared:
            raise Rejected(
                413, f"Image too large: the request is {exc.size} bytes, the limit is {budget}"
            ) from None
        raise Rejected(413, too_large) from None
    except multipart.FieldTooLong as exc:
        if exc.name == "image":
            raise Rejected(413, too_large) from None
        raise Rejected(400, f"field {exc.name!r} is too long") from None
    except multipart.FormError as exc:  # image given twice, a nested or malformed body
        raise Rejected(400, str(exc)) from None
    if not image:
        raise Rejected(400, NO_IMAGE)
    texts = {name: value.decode("utf-8", "replace") for name, value in fields.items()}
    return Upload(image, digest.hexdigest(), texts)


# The seed service's paths; also the routes auth.privacy_without_token exempts (daemon/app.py).
ROUTES = {"/api/v1/blur-faces": blur_faces, "/process": process, "/detect": detect}
PRIVACY_PATHS = frozenset(ROUTES)
