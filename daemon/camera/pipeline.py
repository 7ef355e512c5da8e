"""The live stream's blur pipeline: capture → detect → track → blur → encode → publish, failing closed.

Threads (none of them is the event loop):

* capture (daemon.camera.capture): reads the camera, keeps the newest frame;
* feeder: moves every frame it gets into the fail-closed gate and offers the due ones to the detector
  through a one-frame mailbox (newest wins, so a slow detector works on current frames);
* detector: owns its detection function, built in the thread by ``detector_factory`` (with its own
  VisionEngine, see daemon.services.stream for why not the inference pool);
* renderer: releases frames through the gate (daemon.camera.failclosed), blurs them, encodes one JPEG
  per frame (only when someone wants it) and hands the result to the sinks (the HTTP hub, the
  recorder).

The renderer publishes a frame only through the gate, or, when the detector has failed, stalled (busy
for ``stall_seconds``) or never loaded, as a failsafe frame (the whole picture destroyed, with a
status line). The raw frame object never reaches a sink.
"""

from __future__ import annotations

import collections
import enum
import logging
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daemon.camera.base import Frame
from daemon.camera.capture import TERMINAL_STATES, CaptureLoop, rate
from daemon.camera.failclosed import FailClosedGate, GateSettings, blurred_copy, failsafe_image
from daemon.camera.tracker import Box
from daemon.vision.image import encode_jpeg

_log = logging.getLogger(__name__)

DetectFn = Callable[[np.ndarray], Sequence[object]]  # RGB image → Face objects (or box tuples)
DetectorFactory = Callable[[], DetectFn]
Sink = Callable[["PublishedFrame"], None]
RATE_WINDOW = 5.0  # seconds over which processed_fps and detection_fps are measured


class PipelineState(enum.StrEnum):
    STARTING = "starting"  # no frame published yet
    RUNNING = "running"  # frames go out through the gate
    FAILSAFE = "failsafe"  # the detector failed or stalled: only destroyed frames go out
    ENDED = "ended"  # the source ended (a file) and every frame is out
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    gate: GateSettings = field(default_factory=GateSettings)
    detect_every: int = 1  # offer at most every Nth frame to the detector
    stall_seconds: float = 1.5  # detector busy or silent this long: failsafe
    method: str = "gaussian"
    failsafe_style: str = "blur"  # or "black"
    jpeg_quality: int = 80


@dataclass(frozen=True, slots=True)
class PublishedFrame:
    """What leaves the pipeline: the blurred (or failsafe) picture, never the captured one."""

    index: int  # the capture loop's frame index
    timestamp: float  # capture time (time.monotonic())
    published_at: float
    rgb: np.ndarray
    jpeg: bytes | None  # None when nobody wanted JPEG at the time
    failsafe: bool
    regions: tuple[Box, ...]  # tracker boxes blurred (empty for failsafe frames)


class StreamPipeline:
    """Owns the capture loop it is given: ``start`` starts it, ``stop`` stops it."""

    def __init__(
        self,
        capture: CaptureLoop,
        detector_factory: DetectorFactory,
        settings: PipelineSettings | None = None,
        sinks: Sequence[Sink] = (),
        want_jpeg: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings or PipelineSettings()
        if self.settings.detect_every < 1 or self.settings.stall_seconds <= 0:
            raise ValueError("need detect_every >= 1 and stall_seconds > 0")
        self.capture = capture
        self._detector_factory = detector_factory
        self._sinks = list(sinks)
        self._want_jpeg = want_jpeg
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Guarded by self._cond:
        self._gate = FailClosedGate(self.settings.gate)
        self._mailbox: Frame | None = None
        self._last_offered = -(10**9)
        self._last_offered_at = float("-inf")
        self._feeder_done = False
        self._detector_busy_since: float | None = None  # also set while the model loads
        self._detector_error: str | None = None  # the last call failed (cleared by a success)
        self._detector_failed: str | None = None  # could not be built: permanent
        self._state = PipelineState.STOPPED
        self._counts = collections.Counter[str]()
        self._detect_ms: collections.deque[float] = collections.deque(maxlen=100)
        self._latency_ms: collections.deque[float] = collections.deque(maxlen=100)
        self._published_times: collections.deque[float] = collections.deque(maxlen=512)
        self._detect_times: collections.deque[float] = collections.deque(maxlen=512)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("pipeline already started")
        with self._cond:
            self._state = PipelineState.STARTING
            self._detector_busy_since = time.monotonic()
        self.capture.start()
        for name, target in (("feeder", self._feed), ("detector", self._detect), ("renderer", self._render)):
            thread = threading.Thread(target=target, name=f"stream {name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread. A detector stuck inside a call cannot be interrupted; it is left behind
        (a daemon thread) and its result, if it ever comes, is ignored."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self.capture.stop(timeout)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _log.warning("%s did not stop within %.1fs", thread.name, timeout)
        with self._cond:
            if self._state != PipelineState.ENDED:
                self._state = PipelineState.STOPPED
            self._cond.notify_all()

    def add_sink(self, sink: Sink) -> None:
        with self._cond:
            self._sinks.append(sink)

    # -- consumers -------------------------------------------------------------------------------

    @property
    def state(self) -> PipelineState:
        with self._cond:
            return self._state

    def stats(self) -> dict[str, Any]:
        """Metrics for /health and /api/stream/info."""
        capture = self.capture.stats()
        now = time.monotonic()
        with self._cond:
            counts = dict(self._counts)
            detect_ms = list(self._detect_ms)
            latency_ms = list(self._latency_ms)
            body: dict[str, Any] = {
                "state": self._state.value,
                "detector": self._detector_status(now),
                "processed_fps": round(rate(self._published_times, now, RATE_WINDOW), 2),
                "detection_fps": round(rate(self._detect_times, now, RATE_WINDOW), 2),
                "tracks": self._gate.track_count,
                "pending_frames": self._gate.pending,
            }
        dropped = {
            "capture": capture.frames_dropped,  # never taken: the feeder was busy
            "queue": counts.get("queue_dropped", 0),  # waited too long for detection (queue full)
            "unsafe": counts.get("unsafe_dropped", 0),  # no detection near enough in time
            "failsafe_skipped": counts.get("failsafe_skipped", 0),  # older frames skipped in failsafe
        }
        body.update(
            {
                "source": capture.source,
                "capture_state": capture.state.value,
                "capture_fps": round(capture.fps, 2),
                "frames_captured": capture.frames_captured,
                "frames_published": counts.get("published", 0),
                "failsafe_frames": counts.get("failsafe", 0),
                "detections": counts.get("detections", 0),
                "detector_errors": counts.get("detector_errors", 0),
                "dropped": dropped,
                "dropped_total": sum(dropped.values()),
                "detection_ms": _summary(detect_ms),
                "latency_ms": _summary(latency_ms),
                "reconnects": capture.reconnects,
                "last_camera_error": capture.last_error,
            }
        )
        return body

    # -- threads ---------------------------------------------------------------------------------

    def _feed(self) -> None:
        last = -1
        every = self.settings.detect_every
        max_gap = self.settings.gate.max_detection_age / 2
        while not self._stop.is_set():
            frame = self.capture.wait_frame(last, timeout=0.5)
            if frame is None:
                if self.capture.state in TERMINAL_STATES:
                    break
                continue
            last = frame.index
            with self._cond:
                self._counts["queue_dropped"] += self._gate.add_frame(frame)
                # Due every Nth frame, and at least twice per max_detection_age whatever N says.
                if (
                    frame.index - self._last_offered >= every
                    or frame.timestamp - self._last_offered_at >= max_gap
                ):
                    self._mailbox = frame  # newest wins: an untaken older frame is simply not detected
                    self._last_offered, self._last_offered_at = frame.index, frame.timestamp
                self._cond.notify_all()
        with self._cond:
            self._feeder_done = True
            self._cond.notify_all()

    def _detect(self) -> None:
        try:
            detect = self._detector_factory()
        except Exception as exc:  # boundary: a missing/corrupt model must fail closed, not crash
            _log.error("stream detector unavailable: %s", exc)
            with self._cond:
                self._detector_failed = f"detector unavailable: {exc}"
                self._detector_busy_since = None
                self._cond.notify_all()
            return
        with self._cond:
            self._detector_busy_since = None
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop.is_set() or self._mailbox is not None)
                if self._stop.is_set():
                    return
                frame, self._mailbox = self._mailbox, None
                assert frame is not None
                started = time.monotonic()
                self._detector_busy_since = started
            try:
                faces = list(detect(frame.rgb))
            except Exception as exc:  # boundary: any detector failure means failsafe frames
                with self._cond:
                    if self._detector_error is None:
                        _log.error("stream detector failed: %s: %s", type(exc).__name__, exc)
                    self._detector_error = f"detector error: {type(exc).__name__}"
                    self._counts["detector_errors"] += 1
                    self._detector_busy_since = None
                    self._cond.notify_all()
                continue
            done = time.monotonic()
            with self._cond:
                if self._detector_error is not None:
                    _log.info("stream detector recovered")
                self._detector_error = None
                self._detector_busy_since = None
                self._gate.add_detections(frame.index, frame.timestamp, faces)
                self._counts["detections"] += 1
                self._detect_ms.append((done - started) * 1000)
                self._detect_times.append(done)
                self._cond.notify_all()

    def _render(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop.is_set() or self._has_work(), timeout=0.05)
                if self._stop.is_set():
                    return
                jobs, finished = self._next_jobs(time.monotonic())
            for frame, boxes, reason in jobs:
                self._publish(frame, boxes, reason)
            if finished:
                with self._cond:
                    self._state = PipelineState.ENDED
                    self._cond.notify_all()
                return

    # -- renderer helpers (caller holds self._cond unless said otherwise) -------------------------

    def _has_work(self) -> bool:
        if self._gate.pending == 0:
            return self._input_done()  # only the end to report
        now = time.monotonic()
        return self._gate.ready() or self._flushing(now) or self._failsafe_reason(now) is not None

    def _detector_idle(self) -> bool:
        return self._mailbox is None and self._detector_busy_since is None

    def _input_done(self) -> bool:
        """No frame will come, and no detection either (the detector is idle, failed or stalled)."""
        if not self._feeder_done:
            return False
        busy = self._detector_busy_since
        stalled = busy is not None and time.monotonic() - busy > self.settings.stall_seconds
        return self._detector_idle() or self._detector_failed is not None or stalled

    def _flushing(self, now: float) -> bool:
        """Release what waits without a later detection: at the end of the input, or when the camera
        has gone quiet (the detector is idle and the oldest frame waited stall_seconds)."""
        if self._input_done():
            return True
        head = self._gate.head_timestamp()
        return head is not None and self._detector_idle() and now - head > self.settings.stall_seconds

    def _failsafe_reason(self, now: float) -> str | None:
        """The status line of failsafe frames, or None when the detector can vouch for frames."""
        status = self._detector_status(now)
        return None if status == "ok" else status.partition(":")[0]

    def _next_jobs(self, now: float) -> tuple[list[tuple[Frame, list[Box] | None, str | None]], bool]:
        reason = self._failsafe_reason(now)
        jobs: list[tuple[Frame, list[Box] | None, str | None]] = []
        if reason is not None:
            frames = self._gate.take_all()
            if frames:
                self._counts["failsafe_skipped"] += len(frames) - 1
                jobs.append((frames[-1], None, reason))
            if self._state != PipelineState.FAILSAFE:
                _log.warning("stream pipeline in failsafe: %s", reason)
                self._state = PipelineState.FAILSAFE
        else:
            for release in self._gate.release(flush=self._flushing(now)):
                if release.boxes is None:
                    self._counts["unsafe_dropped"] += 1
                else:
                    jobs.append((release.frame, release.boxes, None))
            if jobs and self._state in (PipelineState.STARTING, PipelineState.FAILSAFE):
                if self._state == PipelineState.FAILSAFE:
                    _log.info("stream pipeline left failsafe")
                self._state = PipelineState.RUNNING
        finished = self._input_done() and self._gate.pending == 0
        return jobs, finished

    def _publish(self, frame: Frame, boxes: list[Box] | None, reason: str | None) -> None:
        """Blur (or destroy), encode, hand to the sinks. Runs without the lock."""
        settings = self.settings
        if reason is not None or boxes is None:
            image = failsafe_image(frame.rgb, settings.failsafe_style, reason or "privacy filter off")
            boxes = []
        else:
            image = blurred_copy(frame.rgb, boxes, settings.method)
        jpeg = encode_jpeg(image, settings.jpeg_quality) if self._want_jpeg() else None
        now = time.monotonic()
        published = PublishedFrame(
            index=frame.index,
            timestamp=frame.timestamp,
            published_at=now,
            rgb=image,
            jpeg=jpeg,
            failsafe=reason is not None,
            regions=tuple(boxes),
        )
        with self._cond:
            self._counts["published"] += 1
            if published.failsafe:
                self._counts["failsafe"] += 1
            self._published_times.append(now)
            self._latency_ms.append((now - frame.timestamp) * 1000)
            sinks = list(self._sinks)
            self._cond.notify_all()
        for sink in sinks:
            try:
                sink(published)
            except Exception:  # boundary: a broken sink (recorder, hub) must not stop the stream
                _log.exception("stream sink %r failed", sink)

    def _detector_status(self, now: float) -> str:
        if self._detector_failed is not None:
            return self._detector_failed
        if self._detector_error is not None:
            return self._detector_error
        busy = self._detector_busy_since
        if busy is not None and now - busy > self.settings.stall_seconds:
            return "detector stalled"
        return "ok"


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "last": round(values[-1], 1),
        "mean": round(statistics.fmean(values), 1),
        "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
        "max": round(ordered[-1], 1),
    }
