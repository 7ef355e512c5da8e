"""Operations over HTTP: the disk floor for every write, and library export/import for integrators.

Routes (docs/API.md, "Library export and import"):

- ``GET /api/admin/library/export[?group=G&group=H]``: the signed bundle (daemon/library/bundle.py),
  streamed as ``application/x-ndjson``.
- ``POST /api/admin/library/import?mode=merge|replace``: a bundle as the raw request body (streamed to
  a private spool file, never held in memory); all-or-nothing.

Both need the *admin* scope (the ``/api/admin/*`` rule of daemon/api/scopes.py).

Disk floor: a middleware (innermost, after auth) refuses writes with HTTP 507 and, in the device API,
code 104930 ``STORAGE_FULL`` while free space is under ``ops.min_free_mb``; reads keep working. The
same answer is given when a write runs into ENOSPC/SQLITE_FULL anyway, instead of the 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from daemon.api.device_errors import device_endpoint
from daemon.api.device_keys import LIBRARY
from daemon.api.families import DEVICE, device_ok, device_response, error_response, family_of
from daemon.api.middleware import Handler
from daemon.api.privacy import PRIVACY_PATHS
from daemon.api.uploads import streams_to_disk
from daemon.appkeys import CONFIG, STATUS
from daemon.library.bundle import BundleError, ImportMode
from daemon.library.errors import GroupNotFound
from daemon.services.disk import DiskGuard, StorageFull, is_storage_full
from daemon.services.portability import LibraryPorter, PayloadTooLarge, PortabilityBusy
from daemon.vision.embed import DESCRIPTOR_SIZE

CODE_STORAGE_FULL = 104930
CODE_BUNDLE_REFUSED = 104931
CODE_BUSY = 104932
EXPORT_PATH = "/api/admin/library/export"
IMPORT_PATH = "/api/admin/library/import"
ADMIN_ROUTES = frozenset({EXPORT_PATH, IMPORT_PATH})  # -> admin scope (see module docstring)
READ_TIMEOUT = 60.0  # seconds an import upload may send nothing
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IMPORT_MODES: dict[str, ImportMode] = {"merge": "merge", "replace": "replace"}
# POST routes that only read: they keep working when the disk is full.
READ_ONLY_POSTS = (
    frozenset(
        {
            "/api/face/compare",
            "/api/face/search",
            "/api/extract_feature",
            "/api/compare_features",
            "/api/compare_image_feature",
        }
    )
    | PRIVACY_PATHS
)

DISK = web.AppKey("ops_disk_guard", DiskGuard)
PORTER = web.AppKey("ops_library_porter", LibraryPorter)


def setup_ops_api(app: web.Application) -> None:
    """Disk guard (middleware + /health section) and the export/import routes. Call after the
    device API (it uses the library service)."""
    config = app[CONFIG]
    guard = DiskGuard(config.state_path, config.ops.min_free_mb, config.ops.disk_check_seconds)
    app[DISK] = guard
    app[PORTER] = LibraryPorter(
        app[LIBRARY], config.bundle_key_path, config.state_path, config.ops.max_import_bytes, DESCRIPTOR_SIZE
    )
    app.middlewares.append(disk_middleware)
    app[STATUS].add_reporter("disk", guard.stats)
    app.cleanup_ctx.append(_ops_ctx)
    app.router.add_get(EXPORT_PATH, export_library)
    app.router.add_post(IMPORT_PATH, import_library)


async def _ops_ctx(app: web.Application) -> AsyncIterator[None]:
    guard = app[DISK]
    task = asyncio.create_task(guard.run(), name="disk-guard")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    app[PORTER].close()


def _full_answer(request: web.Request, message: str) -> web.Response:
    if family_of(request) == DEVICE:
        return device_response(507, CODE_STORAGE_FULL, f"STORAGE_FULL:{message}")
    return error_response(request, 507, f"storage full: {message}")


@web.middleware
async def disk_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    guard = request.app[DISK]
    if request.method in WRITE_METHODS and request.path not in READ_ONLY_POSTS and guard.low:
        return _full_answer(request, guard.refusal())
    try:
        return await handler(request)
    except Exception as exc:
        if not is_storage_full(exc):
            raise
        return _full_answer(request, "the device's storage is full; the write was not applied")


@device_endpoint
async def export_library(request: web.Request) -> web.StreamResponse:
    groups = request.query.getall("group", [])
    chunks = request.app[PORTER].export(groups)  # an async generator: its own iterator
    try:
        first = await chunks.__anext__()
    except (GroupNotFound, BundleError, PortabilityBusy) as exc:
        await chunks.aclose()
        if isinstance(exc, GroupNotFound):
            raise  # device_endpoint answers it (104311)
        return _porter_error(exc)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    response.headers["Content-Disposition"] = 'attachment; filename="facegate-library.bundle"'
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    finally:
        await chunks.aclose()
    await response.write_eof()
    return response


@device_endpoint
@streams_to_disk  # spooled to disk: holds no share of limits.max_buffered_upload_bytes
async def import_library(request: web.Request) -> web.Response:
    mode = _IMPORT_MODES.get(request.query.get("mode", "merge"))
    if mode is None:
        return device_response(400, 104900, "INVALID_PARAMETER:mode must be merge or replace")
    try:
        result = await request.app[PORTER].import_stream(lambda: _read_chunk(request), mode)
    except (BundleError, PortabilityBusy, PayloadTooLarge) as exc:
        return _porter_error(exc)
    except StorageFull as exc:
        return _full_answer(request, str(exc))
    return device_ok(
        {
            "mode": result.mode,
            "images": result.images,
            "faces": result.faces,
            "groupsCreated": result.groups_created,
        }
    )


async def _read_chunk(request: web.Request) -> bytes:
    try:
        return await asyncio.wait_for(request.content.read(1 << 16), READ_TIMEOUT)
    except TimeoutError:
        raise BundleError(f"the upload stalled for {READ_TIMEOUT:.0f} s") from None


def _porter_error(exc: Exception) -> web.Response:
    if isinstance(exc, PortabilityBusy):
        return device_response(409, CODE_BUSY, f"BUSY:{exc}")
    if isinstance(exc, PayloadTooLarge):
        return device_response(413, 104908, f"PAYLOAD_TOO_LARGE:{exc}")
    return device_response(400, CODE_BUNDLE_REFUSED, f"BUNDLE_REFUSED:{exc}")
