"""Asynchronous tasks: blur an uploaded video in the background, survive restarts, clean up after.

Lifecycle of a task: queued → running → done | failed. Tasks run on ``tasks.workers`` threads of
their own, each with its own VisionEngine built on first use (a long video must not occupy the
inference pool that answers HTTP requests, see daemon.services.stream for the same reasoning).

Restarts: a graceful stop interrupts a running task between two frames and puts it back in the
queue (the partial output is deleted; it starts over at the next start). A task found "running" at
start means the daemon died under it: it is queued again, unless that already happened
``tasks.max_attempts`` times (a video that crashes the daemon must not do so forever) or its upload
is gone, then it is failed with the reason. Uploads are deleted as soon as their task ends;
finished tasks (row and result) are deleted ``tasks.keep_hours`` after they ended.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.errors import FacegateError, Overloaded
from daemon.fsmodes import private_dir
from daemon.services.task_store import DONE, FAILED, QUEUED, RUNNING, TaskRecord, TaskStore
from daemon.services.video_blur import VideoCancelled, VideoInfo, blur_video, privacy_detector, video_settings
from daemon.vision.engine import VisionEngine

log = logging.getLogger(__name__)

BLUR_VIDEO = "blur-video"
TASK_ID = re.compile(r"^[0-9a-f]{32}$")
MEDIA_TYPES = {"webm": "video/webm", "mp4": "video/mp4", "avi": "video/x-msvideo"}


class TaskNotFound(FacegateError):
    """No task with this id (never existed, or deleted after tasks.keep_hours)."""


class TaskNotReady(FacegateError):
    """The task has no result (yet, or it failed)."""


CANCELLED = "cancelled"


class TaskService:
    def __init__(self, config: Config, engine_factory: Callable[[], VisionEngine]) -> None:
        self.config = config
        settings = config.tasks
        self.directory = config.tasks_path
        self.uploads = self.directory / "uploads"
        self.results = self.directory / "results"
        self._engine_factory = engine_factory
        self._store: TaskStore | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._active = 0  # queued + running, for the max_queued limit
        self._progress: dict[str, tuple[int, int]] = {}  # live (done, total), set by worker threads
        self._stopping = threading.Event()
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="facegate-task")
        self._local = threading.local()  # one engine per task thread
        self._runners: list[asyncio.Task[None]] = []
        self._cancelled: set[str] = set()  # ids asked to stop; read by the task threads

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        queued = await loop.run_in_executor(None, self._open_and_recover)
        self._active = len(queued)
        for task_id in queued:
            self._queue.put_nowait(task_id)
        self._runners = [
            asyncio.create_task(self._worker(), name=f"task-worker-{n}")
            for n in range(self.config.tasks.workers)
        ]
        self._runners.append(asyncio.create_task(self._sweep_loop(), name="task-sweeper"))

    async def stop(self) -> None:
        """Interrupt running tasks between two frames (they go back to the queue) and close."""
        self._stopping.set()
        for runner in self._runners:
            runner.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._executor.shutdown, True)
        if self._store is not None:
            self._store.close()

    def _open_and_recover(self) -> list[str]:
        for folder in (self.directory, self.uploads, self.results):
            private_dir(folder)
        store = self._store = TaskStore(self.directory / "tasks.sqlite3")
        limit = self.config.tasks.max_attempts
        for record in store.with_status([RUNNING]):  # the daemon died while these ran
            crashes = record.crashes + 1
            upload = self.directory / record.upload if record.upload else None
            if upload is None or not upload.is_file():
                self._fail(record, "the uploaded video is gone (lost in a restart)")
            elif crashes >= limit:
                self._fail(
                    record.evolve(crashes=crashes), f"interrupted {crashes} times while running; not retried"
                )
            else:
                log.warning("task %s was running when the daemon stopped; queued again", record.id)
                store.put(
                    record.evolve(status=QUEUED, crashes=crashes, restarts=record.restarts + 1, frames_done=0)
                )
        self._remove_orphans(store)
        return [record.id for record in store.with_status([QUEUED])]

    def _remove_orphans(self, store: TaskStore) -> None:
        """Files no row refers to: a submit or a result interrupted by a crash."""
        known = store.all_files()
        for folder in (self.uploads, self.results):
            for path in folder.iterdir():
                if str(path.relative_to(self.directory)) not in known:
                    path.unlink(missing_ok=True)

    # -- submitting and reading ------------------------------------------------------------------

    def reserve(self) -> str:
        """A new task id, or Overloaded when tasks.max_queued are already queued or running."""
        if self._active >= self.config.tasks.max_queued:
            raise Overloaded(retry_after=30.0)
        return uuid.uuid4().hex

    def upload_path(self, task_id: str, suffix: str) -> Path:
        return self.uploads / f"{task_id}{suffix}"

    async def submit(
        self,
        task_id: str,
        upload: Path,
        info: VideoInfo,
        original_name: str,
        options: dict[str, Any],
        principal: str,
    ) -> TaskRecord:
        """Register an uploaded, probed video as a queued task."""
        if self._active >= self.config.tasks.max_queued:  # others got in while this one uploaded
            upload.unlink(missing_ok=True)
            raise Overloaded(retry_after=30.0)
        record = TaskRecord(
            id=task_id,
            kind=BLUR_VIDEO,
            status=QUEUED,
            created_at=time.time(),
            frames_total=info.frames,
            upload=str(upload.relative_to(self.directory)),
            original_name=original_name,
            principal=principal,
            options=options,
        )
        await asyncio.get_running_loop().run_in_executor(None, self._require_store().put, record)
        self._active += 1
        self._queue.put_nowait(task_id)
        log.info("task %s queued: %d frames", task_id, info.frames)  # never the client's file name
        return record

    async def get(self, task_id: str, viewer: str | None = None) -> TaskRecord:
        """The task; viewer (a principal) sees only its own tasks, None (admin) sees every task."""
        if not TASK_ID.match(task_id):
            raise TaskNotFound(f"no task {task_id}")
        record = await asyncio.get_running_loop().run_in_executor(None, self._require_store().get, task_id)
        if record is None or (viewer is not None and record.principal != viewer):
            raise TaskNotFound(f"no task {task_id}")
        live = self._progress.get(task_id)
        if record.status == RUNNING and live is not None:
            record = record.evolve(frames_done=live[0], frames_total=live[1] or record.frames_total)
        return record

    async def result_file(self, task_id: str, viewer: str | None = None) -> tuple[Path, str, str]:
        """(path, media type, download name) of a done task's video."""
        record = await self.get(task_id, viewer)
        if record.status != DONE or not record.result:
            reason = f": {record.error}" if record.error else ""
            raise TaskNotReady(f"task is {record.status}{reason}")
        path = self.directory / record.result
        kind = path.suffix.lstrip(".")
        stem = Path(record.original_name).stem or "video"
        return path, MEDIA_TYPES.get(kind, "application/octet-stream"), f"{stem}-blurred.{kind}"

    async def cancel(self, task_id: str, viewer: str | None = None) -> TaskRecord | None:
        """Stop a task: a queued one fails at once ("cancelled"), a running one between two frames
        (the record returned is still running); a finished one is deleted with its result (None)."""
        record = await self.get(task_id, viewer)
        loop = asyncio.get_running_loop()
        if record.status == QUEUED:
            self._cancelled.add(task_id)
            await loop.run_in_executor(None, self._fail, record, CANCELLED)
            return await self.get(task_id, viewer)
        if record.status == RUNNING:
            self._cancelled.add(task_id)
            return record
        await loop.run_in_executor(None, self._delete, record)
        return None

    def _delete(self, record: TaskRecord) -> None:
        for name in (record.upload, record.result):
            if name:
                (self.directory / name).unlink(missing_ok=True)
        self._require_store().delete(record.id)

    # -- retention -------------------------------------------------------------------------------

    async def sweep(self, now: float | None = None) -> int:
        """Delete tasks that ended more than keep_hours before ``now``; how many were deleted."""
        cutoff = (time.time() if now is None else now) - self.config.tasks.keep_hours * 3600
        return await asyncio.get_running_loop().run_in_executor(None, self._sweep, cutoff)

    def _sweep(self, cutoff: float) -> int:
        store = self._require_store()
        expired = store.finished_before(cutoff)
        for record in expired:
            self._delete(record)
        if expired:
            log.info("deleted %d finished tasks older than %g h", len(expired), self.config.tasks.keep_hours)
        return len(expired)

    async def _sweep_loop(self) -> None:
        interval = min(600.0, max(10.0, self.config.tasks.keep_hours * 360))
        while True:
            try:
                await self.sweep()
            except Exception:  # boundary: a failed sweep is retried at the next interval
                log.exception("task cleanup failed")
            await asyncio.sleep(interval)

    # -- running ---------------------------------------------------------------------------------

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            task_id = await self._queue.get()
            try:
                await loop.run_in_executor(self._executor, self._process, task_id)
            except Exception:  # boundary: _process records its own failures; this is a bug
                log.exception("task %s: unexpected error", task_id)
            finally:
                if not self._stopping.is_set():
                    self._active -= 1

    def _process(self, task_id: str) -> None:
        """Run one task to its end (in a task thread)."""
        store = self._require_store()
        record = store.get(task_id)
        if record is None or record.status != QUEUED or self._stopping.is_set() or task_id in self._cancelled:
            self._cancelled.discard(task_id)
            return
        record = record.evolve(status=RUNNING, started_at=time.time(), frames_done=0, error=None)
        store.put(record)
        output = record.options.get("output", self.config.tasks.output)
        target = self.results / f"{task_id}.{output}"
        try:
            detect = privacy_detector(self._engine(), self.config, detector=self.config.tasks.detector)
            result = blur_video(
                self.directory / str(record.upload),
                target,
                detect,
                video_settings(self.config, record.options.get("method")),
                progress=lambda done, total: self._progress.__setitem__(task_id, (done, total)),
                should_stop=lambda: self._stopping.is_set() or task_id in self._cancelled,
            )
        except VideoCancelled:
            if task_id in self._cancelled:
                self._cancelled.discard(task_id)
                self._fail(record, CANCELLED)
                return
            log.info("task %s interrupted by shutdown; it starts over at the next start", task_id)
            store.put(record.evolve(status=QUEUED, restarts=record.restarts + 1, frames_done=0))
            return
        except FacegateError as exc:
            self._fail(record, str(exc))
            return
        except Exception as exc:  # boundary: the task fails with a reason, the worker lives on
            log.exception("task %s failed", task_id)
            self._fail(record, f"internal error ({type(exc).__name__})")
            return
        finally:
            self._progress.pop(task_id, None)
            self._cancelled.discard(task_id)
        (self.directory / str(record.upload)).unlink(missing_ok=True)
        store.put(
            record.evolve(
                status=DONE,
                finished_at=time.time(),
                frames_done=result.frames,
                frames_total=result.frames,
                upload=None,
                result=str(target.relative_to(self.directory)),
            )
        )
        log.info("task %s done: %d frames in %.1f s", task_id, result.frames, result.seconds)

    def _engine(self) -> VisionEngine:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            try:
                engine = self._local.engine = self._engine_factory()
            except Exception as exc:  # boundary: no detector means no task can be processed
                raise FacegateError(f"detector unavailable: {exc}") from exc
        return engine

    def _fail(self, record: TaskRecord, reason: str) -> None:
        log.warning("task %s failed: %s", record.id, reason)
        if record.upload:
            (self.directory / record.upload).unlink(missing_ok=True)
        self._require_store().put(
            record.evolve(status=FAILED, finished_at=time.time(), error=reason, upload=None, result=None)
        )

    def _require_store(self) -> TaskStore:
        if self._store is None:
            raise RuntimeError("task service not started")
        return self._store
