"""Asynchronous tasks over HTTP (FEATURE_API.md conventions: submit → task_id, poll, fetch).

POST /api/v1/tasks/blur-video      multipart: ``video`` (file), optional ``method``, ``output``
                                   → 202 {"task_id", "status", "status_url"}
GET  /api/v1/tasks/{task_id}        status, progress, result_url
GET  /api/v1/tasks/{task_id}/result the blurred video

Errors are ``{"error": …}`` like the rest of the privacy family. The upload is streamed to disk (never
held in memory) with its own limit, tasks.max_upload_bytes, instead of the server's request limit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import BodyPartReader, web

from daemon.api.families import PLAIN, error_response, speaks
from daemon.api.privacy import FORM_OVERHEAD, Rejected
from daemon.appkeys import CONFIG, PRINCIPAL
from daemon.services.task_store import DONE, TaskRecord
from daemon.services.tasks import TASKS, TaskNotFound, TaskNotReady, setup_tasks
from daemon.services.video_blur import VideoError, probe_video
from daemon.vision.blur import BLUR_METHODS
from daemon.vision.engine import VisionEngine

VIDEO_FIELDS = ("video", "file")
UPLOAD_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts"})
OUTPUTS = ("mp4", "avi")
WRITE_CHUNK = 1024 * 1024
MAX_FIELD_BYTES = 1024


def setup_tasks_api(app: web.Application, engine_factory: Callable[[], VisionEngine]) -> None:
    setup_tasks(app, engine_factory)
    app.router.add_post("/api/v1/tasks/blur-video", submit_blur_video)
    app.router.add_get("/api/v1/tasks/{task_id}", get_task)
    app.router.add_get("/api/v1/tasks/{task_id}/result", get_result)


@speaks(PLAIN)
async def submit_blur_video(request: web.Request) -> web.Response:
    service = request.app[TASKS]
    limit = request.app[CONFIG].tasks.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        return error_response(request, 413, f"video too large (limit {limit} bytes)")
    if not request.content_type.startswith("multipart/"):
        return error_response(request, 400, "expected multipart/form-data with a 'video' file field")
    task_id = service.reserve()  # Overloaded → 503 + Retry-After (middleware)
    upload: Path | None = None
    try:
        upload, original, fields = await _receive(request, service.upload_path, task_id, limit)
        method = fields.get("method") or request.app[CONFIG].privacy.method
        output = fields.get("output") or request.app[CONFIG].tasks.output
        if method not in BLUR_METHODS:
            raise Rejected(400, f"unknown method {method!r}; one of {', '.join(BLUR_METHODS)}")
        if output not in OUTPUTS:
            raise Rejected(400, f"unknown output {output!r}; one of {', '.join(OUTPUTS)}")
        try:
            info = await asyncio.get_running_loop().run_in_executor(None, probe_video, upload)
        except VideoError as exc:
            raise Rejected(400, str(exc)) from None
        options = {"method": method, "output": output}
        record = await service.submit(task_id, upload, info, original, options, request.get(PRINCIPAL, ""))
    except Rejected as exc:
        if upload is not None:
            upload.unlink(missing_ok=True)
        return error_response(request, exc.status, exc.message)
    except BaseException:
        if upload is not None:
            upload.unlink(missing_ok=True)
        raise
    url = f"/api/v1/tasks/{record.id}"
    body = {"task_id": record.id, "status": record.status, "status_url": url}
    return web.json_response(body, status=202, headers={"Location": url})


async def _receive(
    request: web.Request, path_for: Callable[[str, str], Path], task_id: str, limit: int
) -> tuple[Path, str, dict[str, str]]:
    """Stream the multipart body: the video to disk, the small text fields into a dict."""
    reader = await request.multipart()
    upload: Path | None = None
    original = ""
    fields: dict[str, str] = {}
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Rejected(400, "nested multipart is not supported")
            if part.name in VIDEO_FIELDS and part.filename is not None:
                if upload is not None:
                    raise Rejected(400, "one video per task")
                original = Path(part.filename).name
                suffix = Path(original).suffix.lower()
                upload = path_for(task_id, suffix if suffix in UPLOAD_SUFFIXES else ".video")
                await _save(part, upload, limit)
            elif part.name in ("method", "output"):
                raw = await _read_capped(part, MAX_FIELD_BYTES)
                if raw is None:
                    raise Rejected(400, f"field {part.name} too long")
                fields[part.name] = raw.decode("utf-8", "replace").strip()
            elif await _read_capped(part, FORM_OVERHEAD) is None:  # other parts: read and dropped
                raise Rejected(413, f"video too large (limit {limit} bytes)")
    except BaseException:
        if upload is not None:
            upload.unlink(missing_ok=True)
        raise
    if upload is None:
        raise Rejected(400, "No video provided")
    return upload, original, fields


async def _read_capped(part: BodyPartReader, cap: int) -> bytes | None:
    """The whole part (read_chunk may return less than asked), or None once it exceeds cap bytes, so
    a client without Content-Length cannot stream an unbounded extra part."""
    data = bytearray()
    while chunk := await part.read_chunk(min(cap + 1, 64 * 1024)):
        data += chunk
        if len(data) > cap:
            return None
    return bytes(data)


async def _save(part: BodyPartReader, path: Path, limit: int) -> int:
    """Write a file part to ``path`` in executor-sized chunks; Rejected(413) beyond ``limit``."""
    loop = asyncio.get_running_loop()
    handle: BinaryIO = await loop.run_in_executor(None, path.open, "wb")
    size = 0
    try:
        buffer = bytearray()
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"video too large (limit {limit} bytes)")
            buffer += chunk
            if len(buffer) >= WRITE_CHUNK:  # written as is: no copy on the event loop
                await loop.run_in_executor(None, handle.write, buffer)
                buffer.clear()
        if buffer:
            await loop.run_in_executor(None, handle.write, buffer)
    finally:
        await loop.run_in_executor(None, handle.close)
    if size == 0:
        raise Rejected(400, "empty video")
    return size


@speaks(PLAIN)
async def get_task(request: web.Request) -> web.Response:
    try:
        record = await request.app[TASKS].get(request.match_info["task_id"])
    except TaskNotFound as exc:
        return error_response(request, 404, str(exc))
    return web.json_response(task_json(record, request.app[CONFIG].tasks.keep_hours))


@speaks(PLAIN)
async def get_result(request: web.Request) -> web.StreamResponse:
    try:
        path, media_type, name = await request.app[TASKS].result_file(request.match_info["task_id"])
    except TaskNotFound as exc:
        return error_response(request, 404, str(exc))
    except TaskNotReady as exc:
        return error_response(request, 409, str(exc))
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
