"""Builds the aiohttp Application: services, routes, middlewares and their lifecycle.

The app owns everything (no module-level state): tests build as many independent apps as they like.
Models are checked (sha256) before the app is built; the interpreters load in the worker threads while
the socket already listens, and /health answers 503 until they are ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from daemon.api import health
from daemon.api.audit_api import setup_audit_api
from daemon.api.auth import PUBLIC_PATHS, AccessPolicy, is_loopback, make_auth_middleware
from daemon.api.config_api import setup_config_api
from daemon.api.cors import make_cors_middleware
from daemon.api.device_api import setup_device_api
from daemon.api.docs import setup_api_docs
from daemon.api.door import setup_door_api
from daemon.api.features import setup_feature_api
from daemon.api.metrics_api import METRICS_PATH, inference_observer, metrics_middleware, setup_metrics
from daemon.api.middleware import make_request_middleware
from daemon.api.ops_api import setup_ops_api
from daemon.api.outputs import setup_outputs
from daemon.api.privacy import FORM_OVERHEAD as PRIVACY_FORM_OVERHEAD
from daemon.api.privacy import PRIVACY_PATHS, setup_privacy_api
from daemon.api.stream import setup_stream_api
from daemon.api.stream_links import setup_stream_links
from daemon.api.tasks import setup_tasks_api
from daemon.api.ui import setup_ui, ui_public_paths
from daemon.api.uploads import UPLOADS, UploadBudget, make_upload_budget_middleware
from daemon.appkeys import CONFIG, POOL, STATUS
from daemon.config import Config
from daemon.services.status import DaemonStatus
from daemon.services.tokens import TokenRegistry
from daemon.services.workers import InferencePool
from daemon.vision.engine import ModelPaths, VisionEngine
from daemon.vision.timing import InferenceObserver

log = logging.getLogger(__name__)

DETECTOR_NAME = "blazeface_full_range"


def build_app(
    config: Config,
    model_paths: ModelPaths,
    tokens: TokenRegistry,
    engine_factory: Callable[[], VisionEngine] | None = None,
) -> web.Application:
    """The daemon's Application; engine_factory replaces how a worker builds its engine (tests)."""
    uploads = UploadBudget(config.limits.max_buffered_upload_bytes)
    policy = AccessPolicy(config, tokens, public_paths(config))
    app = web.Application(
        client_max_size=config.server.max_request_bytes,
        middlewares=[
            metrics_middleware,  # outermost: counts and times every answer, 401s and 500s included
            make_request_middleware(config.server.access_log),
            make_cors_middleware(config.cors, PRIVACY_PATHS),
            make_auth_middleware(policy),
            make_upload_budget_middleware(uploads, largest_body(config)),
        ],
    )
    app[UPLOADS] = uploads
    app[CONFIG] = config
    app[STATUS] = DaemonStatus(DETECTOR_NAME)
    setup_metrics(app)  # first: the engines report their model runs to it
    if engine_factory is None:
        observe = inference_observer(app)

        def engine_factory() -> VisionEngine:
            return engine_from_config(config, model_paths, observe=observe)

        def detection_engine_factory() -> VisionEngine:
            return engine_from_config(config, model_paths, with_embedder=False, observe=observe)

    else:
        detection_engine_factory = engine_factory

    app[POOL] = InferencePool(
        engine_factory,
        workers=config.workers.count,
        max_pending=config.workers.max_pending,
    )
    app[STATUS].add_reporter("workers", app[POOL].stats)
    app.cleanup_ctx.append(_inference_pool_ctx)
    health.add_routes(app)
    # Each API family adds its services (cleanup_ctx) and routes here, one call per family.
    setup_device_api(app)
    setup_feature_api(app)
    setup_privacy_api(app)
    setup_stream_api(app, detection_engine_factory)
    setup_stream_links(app)
    setup_tasks_api(app, detection_engine_factory)
    setup_outputs(app)
    setup_audit_api(app)  # before the ops API: its middleware records the disk floor's refusals too
    setup_ops_api(app)  # after the device API: uses its library; its disk-floor middleware goes last
    setup_config_api(app)
    if config.ui.enabled:
        setup_ui(app, tokens, policy.failures)
    setup_door_api(app, engine_factory)
    setup_api_docs(app)  # /openapi.json and /docs
    return app


def largest_body(config: Config) -> int:
    """The most a route keeps in memory: what a body without Content-Length holds of the upload budget."""
    return max(config.server.max_request_bytes, config.privacy.max_bytes + PRIVACY_FORM_OVERHEAD)


def public_paths(config: Config) -> set[str]:
    """Routes served without a token: /health, and the privacy API when config exempts it on loopback."""
    paths = set(PUBLIC_PATHS)
    if config.ui.enabled:
        paths |= ui_public_paths()
    if config.auth.privacy_without_token and is_loopback(config.server.host):
        paths |= PRIVACY_PATHS
    if config.metrics.public_on_loopback and is_loopback(config.server.host):
        paths.add(METRICS_PATH)
    return paths


def engine_from_config(
    config: Config,
    model_paths: ModelPaths,
    with_embedder: bool = True,
    observe: InferenceObserver | None = None,
) -> VisionEngine:
    min_scores = {"short": config.detection.short_min_score, "full": config.detection.full_min_score}
    return VisionEngine(
        model_paths,
        config.models.num_threads,
        min_scores,
        with_embedder,
        config.models.flip_average,
        recognition_detectors=config.detection.detectors,
        observe=observe,
    )


async def _inference_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool, status = app[POOL], app[STATUS]

    async def load() -> None:
        try:
            await pool.start()
        except Exception as exc:  # a boundary: any load failure must reach /health and the CLI
            log.exception("loading the models failed")
            status.set_failed(f"model loading failed: {exc}")
        else:
            status.set_loaded()

    loader = asyncio.create_task(load(), name="load-models")
    yield
    loader.cancel()
    await asyncio.gather(loader, return_exceptions=True)
    await pool.close()
