"""Asynchronous tasks over HTTP (FEATURE_API.md conventions: submit → task_id, poll, fetch).

POST /api/v1/tasks/blur-video      multipart: ``video`` (file), optional ``method``, ``output``
                                   → 202 {"task_id", "status", "status_url"}
GET  /api/v1/tasks/{task_id}        status, progress, result_url
GET  /api/v1/tasks/{task_id}/result the blurred video
DELETE /api/v1/tasks/{task_id}      cancel (queued → 200, running → 202), or delete a finished task (204)

A task is visible only to the token that submitted it (its principal is recorded) and to admin tokens;
to anyone else it does not exist (404).

Errors are ``{"error": …}`` like the rest of the privacy family. The upload is streamed to disk (never
held in memory) with its own limit, tasks.max_upload_bytes, instead of the server's request limit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import BodyPartReader, web

from daemon.api import multipart
from daemon.api.auth import is_admin
from daemon.api.families import PLAIN, error_response, speaks
from daemon.api.multipart import FieldSpec, Sink
from daemon.api.privacy import FORM_OVERHEAD, Rejected
from daemon.api.uploads import streams_to_disk
from daemon.appkeys import CONFIG, PRINCIPAL
from daemon.fsmodes import private_file
from daemon.services.task_store import DONE, RUNNING, TaskRecord
from daemon.services.tasks import TaskNotFound, TaskService
from daemon.services.video_blur import probe_video
from daemon.vision.blur import BLUR_METHODS
from daemon.vision.engine import VisionEngine

VIDEO_FIELDS = ("video", "file")
TEXT_FIELDS = ("method", "output")
UPLOAD_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts"})
OUTPUTS = ("webm", "mp4", "avi")
WRITE_CHUNK = 1024 * 1024
MAX_FIELD_BYTES = 1024


TASKS = web.AppKey("tasks", TaskService)


def setup_tasks(app: web.Application, engine_factory: Callable[[], VisionEngine]) -> None:
    app[TASKS] = TaskService(app[CONFIG], engine_factory)
    app.cleanup_ctx.append(_tasks_ctx)


async def _tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    service = app[TASKS]
    await service.start()
    yield
    await service.stop()


def setup_tasks_api(app: web.Application, engine_factory: Callable[[], VisionEngine]) -> None:
    setup_tasks(app, engine_factory)
    app.router.add_post("/api/v1/tasks/blur-video", submit_blur_video)
    app.router.add_get("/api/v1/tasks/{task_id}", get_task)
    app.router.add_get("/api/v1/tasks/{task_id}/result", get_result)
    app.router.add_delete("/api/v1/tasks/{task_id}", cancel_task)


def _viewer(request: web.Request) -> str | None:
    """Whose tasks the caller may see: its own (None for admin: every task)."""
    return None if is_admin(request) else request.get(PRINCIPAL, "")


@speaks(PLAIN)
@streams_to_disk
async def submit_blur_video(request: web.Request) -> web.Response:
    service = request.app[TASKS]
    config = request.app[CONFIG]
    limit = config.tasks.max_upload_bytes
    video = _VideoUpload(service)
    specs = {name: FieldSpec(limit, open=video.open, once=False) for name in VIDEO_FIELDS}
    specs |= {name: FieldSpec(MAX_FIELD_BYTES, once=False) for name in TEXT_FIELDS}
    try:
        try:
            form = await multipart.read_form(request, specs, limit + FORM_OVERHEAD, other_cap=FORM_OVERHEAD)
        except multipart.FormError as exc:
            raise _rejection(exc, limit) from None
        await video.close()
        if video.path is None:
            raise Rejected(400, "No video provided")
        if video.size == 0:
            raise Rejected(400, "empty video")
        fields = {name: value.decode("utf-8", "replace").strip() for name, value in form.items()}
        method = fields.get("method") or config.privacy.method
        output = fields.get("output") or config.tasks.output
        if method not in BLUR_METHODS:
            raise Rejected(400, f"unknown method {method!r}; one of {', '.join(BLUR_METHODS)}")
        if output not in OUTPUTS:
            raise Rejected(400, f"unknown output {output!r}; one of {', '.join(OUTPUTS)}")
        info = await asyncio.get_running_loop().run_in_executor(None, probe_video, video.path)
        options = {"method": method, "output": output}
        record = await service.submit(
            video.task_id, video.path, info, video.original, options, request.get(PRINCIPAL, "")
        )
    except BaseException:  # domain errors are answered by the middleware (daemon/api/errors.py)
        await video.discard()
        raise
    url = f"/api/v1/tasks/{record.id}"
    body = {"task_id": record.id, "status": record.status, "status_url": url}
    return web.json_response(body, status=202, headers={"Location": url})


def _rejection(exc: multipart.FormError, limit: int) -> Rejected:
    if isinstance(exc, multipart.NotMultipart):
        return Rejected(400, "expected multipart/form-data with a 'video' file field")
    if isinstance(exc, multipart.FieldTooLong) and exc.name in TEXT_FIELDS:
        return Rejected(400, f"field {exc.name} too long")
    if isinstance(exc, multipart.BodyTooLarge | multipart.FieldTooLong):  # the video, or the rest of the form
        return Rejected(413, f"video too large (limit {limit} bytes)")
    return Rejected(400, str(exc))


def safe_file_name(name: str, limit: int = 200) -> str:
    """The base name a client gave its upload, kept printable and storable: control characters and
    lone surrogates (undecodable bytes, not storable as UTF-8) become ``_``; at most ``limit`` characters."""
    base = Path(name.replace("\\", "/")).name[:limit]
    return "".join(c if c.isprintable() else "_" for c in base)


class _VideoUpload:
    """The video part, written to the task's upload file in executor-sized chunks as it arrives (never
    held in memory, never copied on the event loop). The task id is reserved when the part starts."""

    def __init__(self, service: TaskService) -> None:
        self._service = service
        self.task_id = ""
        self.path: Path | None = None
        self.original = ""
        self.size = 0
        self._handle: BinaryIO | None = None
        self._buffer = bytearray()

    def open(self, part: BodyPartReader) -> Sink | None:
        """The sink for a video part; None (read and dropped as an unknown part) when it is no file."""
        if part.filename is None:
            return None
        if self.path is not None:
            raise Rejected(400, "one video per task")
        self.task_id = self._service.reserve()  # Overloaded → 503 + Retry-After (middleware)
        self.original = safe_file_name(part.filename)
        suffix = Path(self.original).suffix.lower()
        self.path = self._service.upload_path(self.task_id, suffix if suffix in UPLOAD_SUFFIXES else ".video")
        return self._write

    async def _write(self, chunk: bytes) -> None:
        loop = asyncio.get_running_loop()
        if self._handle is None:
            assert self.path is not None  # open() chose it before handing out this sink
            self._handle = await loop.run_in_executor(None, _open_private, self.path)
        handle = self._handle
        self.size += len(chunk)
        self._buffer += chunk
        if len(self._buffer) >= WRITE_CHUNK:  # written as is: no copy on the event loop
            await loop.run_in_executor(None, handle.write, self._buffer)
            self._buffer.clear()

    async def close(self) -> None:
        """Write what is still buffered and close the file."""
        if self._handle is None:
            return
        loop = asyncio.get_running_loop()
        handle, self._handle = self._handle, None
        try:
            if self._buffer:
                await loop.run_in_executor(None, handle.write, self._buffer)
        finally:
            self._buffer.clear()
            await loop.run_in_executor(None, handle.close)

    async def discard(self) -> None:
        """Delete the (partial) upload."""
        self._buffer.clear()
        try:
            await self.close()
        finally:
            if self.path is not None:
                self.path.unlink(missing_ok=True)


@speaks(PLAIN)
async def get_task(request: web.Request) -> web.Response:
    record = await request.app[TASKS].get(request.match_info["task_id"], _viewer(request))
    return web.json_response(task_json(record, request.app[CONFIG].tasks.keep_hours))


@speaks(PLAIN)
async def cancel_task(request: web.Request) -> web.Response:
    """DELETE: cancel a queued (200) or running (202) task; delete a finished one and its result (204)."""
    try:
        record = await request.app[TASKS].cancel(request.match_info["task_id"], _viewer(request))
    except TaskNotFound as exc:
        return error_response(request, 404, str(exc))
    if record is None:
        return web.Response(status=204)
    body = task_json(record, request.app[CONFIG].tasks.keep_hours)
    return web.json_response(body, status=202 if record.status == RUNNING else 200)


@speaks(PLAIN)
async def get_result(request: web.Request) -> web.StreamResponse:
    path, media_type, name = await request.app[TASKS].result_file(
        request.match_info["task_id"], _viewer(request)
    )
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    headers = {"Content-Type": media_type, "Content-Disposition": f'attachment; filename="{safe}"'}
    return web.FileResponse(path, headers=headers)


def task_json(record: TaskRecord, keep_hours: float) -> dict[str, Any]:
    if record.status == DONE:
        progress: float | None = 1.0
    elif record.frames_total > 0:
        progress = round(min(1.0, record.frames_done / record.frames_total), 3)
    else:
        progress = None if record.frames_done else 0.0
    expires = record.finished_at + keep_hours * 3600 if record.finished_at is not None else None
    return {
        "task_id": record.id,
        "kind": record.kind,
        "status": record.status,
        "progress": progress,
        "frames_done": record.frames_done,
        "frames_total": record.frames_total,
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "expires_at": _iso(expires),
        "error": record.error,
        "result_url": f"/api/v1/tasks/{record.id}/result" if record.status == DONE else None,
        "method": record.options.get("method"),
        "output": record.options.get("output"),
        "restarts": record.restarts,
    }


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _open_private(path: Path) -> BinaryIO:
    """The upload file, created 0600 (the umask of a daemon run by hand may be 0022)."""
    return private_file(path).open("wb")
