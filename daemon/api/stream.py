"""The camera stream over HTTP: MJPEG, snapshot, metrics. Errors are ``{"error": …}`` (PLAIN family).

GET /api/stream.mjpg   multipart/x-mixed-replace of JPEG parts: every viewer gets the same encoded
                       frame (one encode per frame however many watch); a slow viewer skips frames.
GET /api/snapshot.jpg  the newest published frame as one JPEG.
GET /api/stream/info   pipeline and capture metrics (also summarised in /health "camera").

Only frames the fail-closed pipeline published exist here: blurred, or failsafe (fully destroyed
with a status line). 503 when no camera is configured, too many viewers watch, or no frame came.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from daemon.api.families import PLAIN, error_response, speaks
from daemon.appkeys import CONFIG, STATUS
from daemon.camera.pipeline import PublishedFrame
from daemon.services.stream import StreamService
from daemon.vision.engine import VisionEngine

BOUNDARY = "facegateframe"
FIRST_FRAME_TIMEOUT = 10.0  # seconds a new client waits for a frame before 503
FRESH_SNAPSHOT = 1.0  # a published frame younger than this answers a snapshot without waiting
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate", "Pragma": "no-cache"}


STREAM = web.AppKey("stream", StreamService)


def setup_stream(app: web.Application, engine_factory: Callable[[], VisionEngine]) -> None:
    """Create the stream service when a camera is configured; /health reports it either way."""
    config = app[CONFIG]
    if not config.camera.source:
        app[STATUS].add_reporter("camera", lambda: {"state": "disabled"})
        return
    service = StreamService(config, engine_factory)
    app[STREAM] = service
    app[STATUS].add_reporter("camera", service.health)
    app.cleanup_ctx.append(_stream_ctx)
    app.on_shutdown.append(_close_viewers)


async def _stream_ctx(app: web.Application) -> AsyncIterator[None]:
    service = app[STREAM]
    loop = asyncio.get_running_loop()
    service.start(loop)
    yield
    await loop.run_in_executor(None, service.stop)


async def _close_viewers(app: web.Application) -> None:
    """On shutdown, end every MJPEG response at once (they would hold the shutdown otherwise)."""
    hub = app[STREAM].hub
    if hub is not None:
        hub.close()


def setup_stream_api(app: web.Application, engine_factory: Callable[[], VisionEngine]) -> None:
    setup_stream(app, engine_factory)
    app.router.add_get("/api/stream.mjpg", stream_mjpeg)
    app.router.add_get("/api/snapshot.jpg", snapshot)
    app.router.add_get("/api/stream/info", stream_info)


def _service(request: web.Request) -> StreamService | None:
    service = request.app.get(STREAM)
    return service if service is not None and service.hub is not None else None


def _no_frame(request: web.Request, service: StreamService) -> web.Response:
    info = service.info()
    state = info.get("capture_state", info.get("state"))
    error = info.get("last_camera_error")
    detail = f"camera {state}" + (f": {error}" if error else "")
    return error_response(request, 503, f"no frame from the camera ({detail})", {"Retry-After": "2"})


@speaks(PLAIN)
async def stream_mjpeg(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return error_response(request, 503, "no camera configured")
    hub = service.hub
    assert hub is not None
    if hub.viewers >= request.app[CONFIG].stream.max_viewers:
        return error_response(request, 503, "too many stream viewers", {"Retry-After": "5"})
    if hub.latest is None and not service.camera_up():
        return _no_frame(request, service)
    with hub.demand(viewer=True):
        frame = await hub.next_frame(-1, FIRST_FRAME_TIMEOUT)
        if frame is None:
            return _no_frame(request, service)
        response = web.StreamResponse(
            headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}", **NO_STORE}
        )
        await response.prepare(request)
        while frame is not None:
            assert frame.jpeg is not None
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n"
                f"X-Frame-Index: {frame.index}\r\n\r\n"
            ).encode("ascii")
            try:
                await response.write(head + frame.jpeg + b"\r\n")
            except ConnectionError:  # the viewer went away
                break
            frame = await _next_or_wait(service, frame.index, request)
        return response


async def _next_or_wait(service: StreamService, after: int, request: web.Request) -> PublishedFrame | None:
    """The next frame; while the camera is quiet keep waiting (the viewer may stay for recovery)."""
    hub = service.hub
    assert hub is not None
    while not hub.closed:
        transport = request.transport
        if transport is None or transport.is_closing():
            return None
        frame = await hub.next_frame(after, 5.0)
        if frame is not None:
            return frame
    return None


@speaks(PLAIN)
async def snapshot(request: web.Request) -> web.Response:
    service = _service(request)
    if service is None:
        return error_response(request, 503, "no camera configured")
    hub = service.hub
    assert hub is not None
    frame = hub.latest
    if frame is None and not service.camera_up():
        return _no_frame(request, service)
    if frame is None or time.monotonic() - frame.published_at > FRESH_SNAPSHOT:
        with hub.demand():
            frame = await hub.next_frame(frame.index if frame else -1, FIRST_FRAME_TIMEOUT)
        if frame is None:
            return _no_frame(request, service)
    assert frame.jpeg is not None
    return web.Response(body=frame.jpeg, content_type="image/jpeg", headers=NO_STORE)


@speaks(PLAIN)
async def stream_info(request: web.Request) -> web.Response:
    service = _service(request)
    if service is None:
        return error_response(request, 503, "no camera configured")
    return web.json_response(service.info())
