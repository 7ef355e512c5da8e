"""The live door: the door pipeline on the camera, its events store, its settings and live fan-out.

One capture per camera: the door reads the stream's CaptureLoop (daemon/camera/capture.py) through
its newest-frame slot, next to the blur pipeline; each consumer keeps its own ``after_index``, so the
door drops (and counts) the frames it cannot keep up with without slowing the stream. The door runs
in its own thread with its own VisionEngine (with the embedder), like the stream's detector, never in
the HTTP pool. Blocking I/O of the API side (event queries, settings writes) runs on one dedicated
I/O thread.

Faults give a status, not a crash: a camera that stalls or reconnects, frames that are not images,
a pipeline exception (counted, logged once per streak), a failed events write.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from daemon.camera.capture import TERMINAL_STATES, CaptureLoop
from daemon.config import CheckinConfig, Config
from daemon.library.events import EventStore
from daemon.services.door import DoorDecision, DoorPipeline
from daemon.services.door_liveness import blink_settings
from daemon.services.door_settings import DoorSettingsStore
from daemon.services.event_broker import EventBroker
from daemon.services.library_service import LibraryService
from daemon.services.scores import ScoreMapping
from daemon.vision.engine import VisionEngine

log = logging.getLogger(__name__)
T = TypeVar("T")
PRUNE_SECONDS = 600.0


class DoorService:
    def __init__(
        self,
        config: Config,
        engine_factory: Callable[[], VisionEngine],
        library: LibraryService,
        capture: Callable[[], CaptureLoop | None],
    ) -> None:
        self.config = config
        self._engine_factory = engine_factory
        self._library = library
        self._capture = capture
        self.settings_store = DoorSettingsStore(config.checkin, config.state_path)
        self.settings: CheckinConfig = config.checkin
        self.events: EventStore | None = None
        #: called with the events store once it is open, before the door runs (the outputs attach
        #: their outbox hook and relay listener here, so no event can miss them)
        self.events_openers: list[Callable[[EventStore], None]] = []
        self.broker: EventBroker | None = None
        self._io: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: CheckinConfig | None = None
        self._pipeline: DoorPipeline | None = None
        self._state = "disabled"
        self._counts: collections.Counter[str] = collections.Counter()
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=200)

    # -- lifecycle (the app's cleanup_ctx) ------------------------------------------------------

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._io = ThreadPoolExecutor(1, thread_name_prefix="facegate-door-io")
        path = self.config.state_path / "events.sqlite3"
        self.events = await self.run_io(lambda: EventStore(path))
        self.settings = await self.run_io(self.settings_store.load)
        checkin = self.config.checkin
        self.broker = EventBroker(loop, checkin.sse_max_clients, checkin.sse_queue)
        self.events.add_listener(self.broker.publish_threadsafe)
        for opened in self.events_openers:
            opened(self.events)
        if not checkin.enabled:
            return
        self._library.protected_groups = lambda: frozenset(self.settings.groups)
        capture = self._capture()
        if capture is None:
            self._state = "no camera (camera.source is empty)"
            log.warning("door: checkin.enabled but no camera configured; the door does not run")
            return
        self._state = "starting"
        self._thread = threading.Thread(target=self._run, args=(capture,), name="door", daemon=True)
        self._thread.start()
        log.info("door started on %s: groups %s", capture.describe(), list(self.settings.groups))

    async def stop(self) -> None:
        self._stop.set()
        loop = asyncio.get_running_loop()
        if self._thread is not None:
            await loop.run_in_executor(self._io, self._thread.join, 10.0)
        if self.broker is not None:
            self.broker.close()
        if self.events is not None:
            await self.run_io(self.events.close)
        if self._io is not None:
            self._io.shutdown(wait=True)

    async def run_io(self, fn: Callable[[], T]) -> T:
        assert self._io is not None
        return await asyncio.get_running_loop().run_in_executor(self._io, fn)

    # -- settings --------------------------------------------------------------------------------

    async def update_settings(self, patch: Any) -> CheckinConfig:
        """Validate, persist, then apply (ConfigError with the key path; nothing changes then)."""
        settings = await self.run_io(lambda: self.settings_store.update(patch))
        self._set(settings)
        return settings

    async def reset_settings(self) -> CheckinConfig:
        settings = await self.run_io(self.settings_store.reset)
        self._set(settings)
        return settings

    def _set(self, settings: CheckinConfig) -> None:
        with self._lock:
            self.settings = settings
            self._pending = settings
        log.info("door settings changed: groups %s, liveness %s", list(settings.groups), settings.liveness)

    # -- status ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            latency = sorted(self._latency_ms)
        body: dict[str, Any] = {"state": self._state, "enabled": self.config.checkin.enabled}
        body.update(
            {k: counts.get(k, 0) for k in ("frames_dropped", "frames_skipped", "bad_frames", "errors")}
        )
        pipeline = self._pipeline
        if pipeline is not None:
            body.update(pipeline.status())
        else:
            body["liveness"] = {"policy": self.settings.liveness}
        if latency:
            body["decision_latency_ms"] = {
                "p50": round(latency[len(latency) // 2], 1),
                "p95": round(latency[min(len(latency) - 1, int(len(latency) * 0.95))], 1),
            }
        body["settings_error"] = self.settings_store.load_error
        body["sse_clients"] = self.broker.clients if self.broker else 0
        return body

    # -- the door thread -------------------------------------------------------------------------

    def _run(self, capture: CaptureLoop) -> None:
        try:
            engine = self._engine_factory()
            config = self.config
            pipeline = DoorPipeline(
                engine,
                self._library.store,
                ScoreMapping(config.scores.anchors),
                self.settings,
                blink_settings(config.blink, config.checkin),
                config.models_path,
            )
        except Exception as exc:  # boundary: a missing model gives a status, not a crash
            log.error("door unavailable: %s", exc)
            self._state = f"failed: {exc}"
            return
        self._pipeline = pipeline
        if not pipeline.policy.available:
            self._state = f"running; grants refused: {pipeline.policy.unavailable}"
        last, failing, next_prune = -1, False, 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_prune:
                self._prune()
                next_prune = time.monotonic() + PRUNE_SECONDS
            frame = capture.wait_frame(last, timeout=0.5)
            if frame is None:
                state = capture.state
                self._state = f"camera {state.value}" if state in TERMINAL_STATES else "waiting for frames"
                if state in TERMINAL_STATES:
                    self._stop.wait(0.5)
                continue
            with self._lock:  # after the wait: a change made meanwhile applies to this frame already
                pending, self._pending = self._pending, None
            if pending is not None:
                pipeline.apply(pending)
            if last >= 0 and frame.index > last + 1:
                self._count("frames_dropped", frame.index - last - 1)
            last = frame.index
            if not pipeline.due(frame.timestamp):
                self._count("frames_skipped")
                continue
            rgb = frame.rgb
            if not (
                isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
            ):
                self._count("bad_frames")
                continue
            wall = time.time() - (time.monotonic() - frame.timestamp)
            try:
                decisions = pipeline.process(rgb, frame.timestamp, wall)
            except Exception as exc:  # boundary: one bad frame must not stop the door
                self._count("errors")
                if not failing:
                    log.error("door pipeline failed on a frame: %s: %s", type(exc).__name__, exc)
                failing = True
                self._state = f"error: {type(exc).__name__}"
                continue
            if failing:
                log.info("door pipeline recovered")
            failing = False
            self._state = (
                "running"
                if pipeline.policy.available
                else (f"running; grants refused: {pipeline.policy.unavailable}")
            )
            for decision in decisions:
                self._record(decision)

    def _record(self, decision: DoorDecision) -> None:
        assert self.events is not None
        try:
            self.events.insert(decision.event, decision.snapshot)
        except Exception as exc:  # boundary: a full disk must not stop recognition
            self._count("errors")
            log.error("door: storing an event failed: %s", exc)
            return
        if decision.first_usable is not None:
            with self._lock:
                self._latency_ms.append((time.monotonic() - decision.first_usable) * 1000)

    def _prune(self) -> None:
        if self.events is None:
            return
        s = self.settings
        try:
            removed = self.events.prune(s.keep_days * 86400, s.keep_events)
        except Exception as exc:  # boundary: retention is housekeeping
            log.warning("door: pruning events failed: %s", exc)
            return
        if removed:
            log.info("door: %d old events deleted", removed)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n
