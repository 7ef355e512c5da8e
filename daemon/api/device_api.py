"""The device REST API (DEVICE_API.md): its services, their lifecycle, and its routes.

``setup_device_api(app)`` is the one call build_app makes. The services are built here without I/O;
the app's cleanup_ctx opens the library (SQLite + index) before the server accepts requests and
closes it after the last one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from daemon.api import device_faces, device_groups, device_recognition
from daemon.api.device_keys import ENROLLMENT, LIBRARY, RECOGNITION
from daemon.appkeys import CONFIG, POOL, STATUS
from daemon.library.keys import resolve_key_path
from daemon.services.enrollment import EnrollmentService, EnrollmentSettings
from daemon.services.library_service import LibraryService
from daemon.services.recognition import RecognitionService, recognition_limits
from daemon.services.scores import ScoreMapping
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of


def setup_device_api(app: web.Application) -> None:
    """Create the library, enrollment and recognition services and add the device routes."""
    config, pool = app[CONFIG], app[POOL]
    # The embedder's model_id (daemon/vision/embed.py); the services check each job's engine
    # against it, so an engine_factory that builds another model fails loudly (MODEL_MISMATCH).
    model_id = model_id_of(config.models.embedding)
    key_path = resolve_key_path(config.security.key_file, config.state_path)
    library = LibraryService(config.database_path, model_id, DESCRIPTOR_SIZE, key_path)
    app[LIBRARY] = library
    app[ENROLLMENT] = EnrollmentService(
        pool, library, EnrollmentSettings.from_config(config.library, config.limits.max_decode_bytes)
    )
    app[RECOGNITION] = RecognitionService(
        pool,
        library,
        ScoreMapping(config.scores.anchors),
        recognition_limits(config.library, config.limits.max_decode_bytes),
        config.liveness,
    )
    app.cleanup_ctx.append(_library_ctx)
    app[STATUS].add_reporter("library", library.stats)
    device_faces.add_routes(app)
    device_groups.add_routes(app)
    device_recognition.add_routes(app)


async def _library_ctx(app: web.Application) -> AsyncIterator[None]:
    library = app[LIBRARY]
    await library.start()
    yield
    await library.close()
