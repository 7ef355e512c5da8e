"""GET /metrics (Prometheus text format) and the middleware that counts and times every request.

``setup_metrics(app)`` is called first in build_app: the engines report inference times to the app's
Metrics (daemon/ops/metrics.py) from the moment they load. The component sources are read at scrape
time through the app's keys, so the order in which the API families are set up does not matter.
Whether /metrics needs a token: config ``metrics.public_on_loopback`` (daemon/app.py, public_paths).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from daemon.api.device_keys import LIBRARY
from daemon.api.middleware import Handler
from daemon.api.ops_api import DISK
from daemon.api.stream import STREAM
from daemon.appkeys import CONFIG, POOL, PRINCIPAL
from daemon.ops.metrics import (
    CONTENT_TYPE,
    UNMATCHED_ROUTE,
    CameraCollector,
    DiskCollector,
    LibraryCollector,
    Metrics,
    PoolCollector,
    Source,
)
from daemon.vision.timing import InferenceObserver

METRICS = web.AppKey("metrics", Metrics)
METRICS_PATH = "/metrics"
CLIENT_GONE = 499  # the client went away before the answer (nginx's convention); never sent


def setup_metrics(app: web.Application) -> None:
    """The app's Metrics, its component collectors and the /metrics route (when metrics.enabled)."""
    if not app[CONFIG].metrics.enabled:
        return
    metrics = Metrics()
    app[METRICS] = metrics
    metrics.add_collector(PoolCollector(_source(app, lambda: app[POOL].stats())))
    metrics.add_collector(LibraryCollector(_source(app, lambda: app[LIBRARY].stats())))
    metrics.add_collector(DiskCollector(_source(app, lambda: app[DISK].stats())))
    metrics.add_collector(CameraCollector(_source(app, lambda: app[STREAM].info())))
    app.router.add_get(METRICS_PATH, metrics_handler)


def inference_observer(app: web.Application) -> InferenceObserver | None:
    """What an engine built for this app reports its model runs to (None: metrics are off)."""
    metrics = app.get(METRICS)
    return metrics.observe_inference if metrics is not None else None


def _source(app: web.Application, read: Callable[[], Mapping[str, Any] | None]) -> Source:
    def source() -> Mapping[str, Any] | None:
        try:
            return read()
        except KeyError:  # the component is not part of this app (no camera, …)
            return None

    return source


async def metrics_handler(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def route_of(request: web.Request) -> str:
    """The matched route's pattern (``/api/faces/{faceToken}``): bounded, unlike the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees the final status of every request, auth failures and the 500s included."""
    metrics = request.app.get(METRICS)
    if metrics is None:
        return await handler(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        metrics.observe_request(request.method, route_of(request), status, time.perf_counter() - started)
        if status == 401:
            metrics.observe_auth_failure("unauthenticated")
        elif status == 403:
            metrics.observe_auth_failure("forbidden" if PRINCIPAL in request else "invalid_token")
