"""The camera stream as a service of the app: built from config, started and stopped with the app.

When ``camera.source`` is set, the app gets a StreamService (app[STREAM], wired in daemon/api/stream.py):
the capture loop, the fail-closed pipeline (daemon.camera.pipeline) with its own detector engine, the
optional recorder, and the FrameHub that hands published JPEGs to HTTP clients on the event loop.
/health gets a "camera" section either way ("disabled" without a camera).

Why the stream has its own engine instead of borrowing the inference pool: the pool is sized and
bounded for HTTP requests and answers 503 when they saturate it; a stream that queued one job per
frame there would either starve API clients or be starved by them (and a starved detector means
failsafe frames). One more set of interpreters costs a few MB; the detector thread is the only
user of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from daemon.camera.capture import CaptureLoop, CaptureState
from daemon.camera.failclosed import GateSettings
from daemon.camera.pipeline import PipelineSettings, PublishedFrame, StreamPipeline
from daemon.camera.recorder import StreamRecorder
from daemon.camera.registry import source_from_config
from daemon.config import Config
from daemon.services.video_blur import privacy_detector
from daemon.vision.engine import VisionEngine
from daemon.vision.types import Face

log = logging.getLogger(__name__)


class FrameHub:
    """Newest published JPEG for any number of viewers: one encode per frame, shared by all.

    The renderer thread calls :meth:`sink`; viewers await :meth:`next_frame` on the loop. A slow
    viewer skips frames (it always gets the newest), it never delays the others.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._latest: PublishedFrame | None = None
        self._changed = asyncio.Event()
        self._demand = 0  # viewers and snapshot requests waiting; read by the renderer thread
        self.viewers = 0
        self.closed = False

    def sink(self, frame: PublishedFrame) -> None:
        """Pipeline sink (renderer thread)."""
        if frame.jpeg is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody is watching any more
            self._loop.call_soon_threadsafe(self._publish, frame)

    def wants_jpeg(self) -> bool:
        """Encode only while someone waits for frames (called by the renderer thread)."""
        return self._demand > 0

    def _publish(self, frame: PublishedFrame) -> None:
        self._latest = frame
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def latest(self) -> PublishedFrame | None:
        return self._latest

    async def next_frame(self, after_index: int, timeout: float) -> PublishedFrame | None:
        """The newest frame with an index above ``after_index``; None on timeout or when closed."""
        deadline = self._loop.time() + timeout
        while not self.closed:
            latest = self._latest
            if latest is not None and latest.index > after_index:
                return latest
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return None

    @contextlib.contextmanager
    def demand(self, viewer: bool = False) -> Iterator[None]:
        self._demand += 1
        self.viewers += viewer
        try:
            yield
        finally:
            self._demand -= 1
            self.viewers -= viewer

    def close(self) -> None:
        self.closed = True
        self._changed.set()


class StreamService:
    def __init__(self, config: Config, engine_factory: Callable[[], VisionEngine]) -> None:
        camera, stream = config.camera, config.stream
        source = source_from_config(
            camera.source, camera.width, camera.height, camera.fps, loop=camera.loop
        )  # ConfigError now, at build time, for a bad spec
        self.config = config
        self.settings = PipelineSettings(
            gate=GateSettings(
                max_detection_age=stream.max_detection_age,
                lookahead=stream.lookahead,
                max_pending=stream.max_pending_frames,
                hold_seconds=stream.hold_seconds,
            ),
            detect_every=stream.detect_every,
            stall_seconds=stream.stall_seconds,
            method=stream.method,
            failsafe_style=stream.failsafe_style,
            jpeg_quality=stream.jpeg_quality,
        )
        self._source = source
        self._engine_factory = engine_factory
        self.hub: FrameHub | None = None
        self.pipeline: StreamPipeline | None = None
        self.recorder: StreamRecorder | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        config, engine_factory = self.config, self._engine_factory
        self.hub = FrameHub(loop)

        # Runs in the pipeline's detector thread: models load there.
        def detector_factory() -> Callable[[np.ndarray], list[Face]]:
            return privacy_detector(
                engine_factory(),
                config,
                config.stream.tiles_per_frame,
                config.stream.detector,
                config.stream.max_side,
            )

        self.pipeline = StreamPipeline(
            CaptureLoop(self._source),
            detector_factory,
            self.settings,
            sinks=[self.hub.sink],
            want_jpeg=self.hub.wants_jpeg,
        )
        if config.stream.record:
            directory = Path(config.stream.record_dir or config.state_path / "recordings")
            self.recorder = StreamRecorder(
                directory,
                fps=config.camera.fps,
                segment_seconds=config.stream.record_segment_seconds,
                keep_segments=config.stream.record_keep,
            )
            self.recorder.start()
            self.pipeline.add_sink(self.recorder)
        self.pipeline.start()
        log.info("camera stream started: %s", self._source.describe())

    def stop(self) -> None:
        """Blocking (joins threads): call it in an executor."""
        if self.pipeline is not None:
            self.pipeline.stop()
        if self.recorder is not None:
            self.recorder.stop()

    def camera_up(self) -> bool:
        """Is the camera delivering (or about to)? False while it reconnects, failed or ended."""
        if self.pipeline is None:
            return False
        return self.pipeline.capture.state in (CaptureState.STARTING, CaptureState.RUNNING)

    def info(self) -> dict[str, Any]:
        """Every metric (GET /api/stream/info)."""
        if self.pipeline is None:
            return {"state": "stopped", "source": self._source.describe()}
        body = self.pipeline.stats()
        hub = self.hub
        body["viewers"] = hub.viewers if hub else 0
        latest = hub.latest if hub else None
        body["last_frame_age_s"] = round(time.monotonic() - latest.published_at, 2) if latest else None
        body["recording"] = self.recorder.stats() if self.recorder else None
        return body

    def health(self) -> dict[str, Any]:
        """The compact camera section of /health."""
        info = self.info()
        keys = (
            "state",
            "source",
            "capture_state",
            "detector",
            "capture_fps",
            "processed_fps",
            "dropped_total",
            "tracks",
            "viewers",
            "last_camera_error",
        )
        body = {key: info[key] for key in keys if key in info}
        detection = info.get("detection_ms")
        body["detection_ms"] = detection["mean"] if detection else None
        return body
