"""The capture loop: one thread per camera that keeps only the newest frame and survives outages.

Why a thread and a one-frame slot: a camera produces frames at its own pace whatever the pipeline
does. Reading it continuously keeps its buffers drained (so the frame we hand out is current), and
a slot of one means a slow consumer gets the newest picture and the frames it could not take are
counted as drops instead of piling up in a queue. A camera that is absent at boot or disappears is
reopened with exponential backoff; the log says "camera lost" and "camera recovered" once each,
not once per attempt.

It is synchronous on purpose (threads and a Condition): the asyncio side bridges with
``loop.run_in_executor(None, capture.wait_frame, after, timeout)``.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import TracebackType

from daemon.camera.base import CameraError, Frame, FrameSource

_log = logging.getLogger(__name__)


class CaptureState(enum.StrEnum):
    STARTING = "starting"  # start() called, the source has not delivered yet
    RUNNING = "running"  # frames are flowing
    RECONNECTING = "reconnecting"  # the source failed; reopening with backoff
    FAILED = "failed"  # a permanent error (e.g. backend not installed): the thread gave up
    ENDED = "ended"  # the source finished (a file without loop)
    STOPPED = "stopped"  # stop() was called (or the loop was never started)


#: States in which no more frames will come; waiters return instead of waiting out their timeout.
TERMINAL_STATES = frozenset({CaptureState.FAILED, CaptureState.ENDED, CaptureState.STOPPED})


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """A consistent snapshot for status pages and metrics."""

    source: str
    state: CaptureState
    frames_captured: int  # frames read from the source over the loop's life
    frames_dropped: int  # frames replaced in the slot before any consumer took them
    reconnects: int  # reopen attempts after a failure (successful or not)
    fps: float  # capture rate over the last ``fps_window`` seconds; 0 when nothing arrives
    last_error: str | None  # the most recent failure, kept after recovery for diagnosis


class CaptureLoop:
    """Run ``source`` in a daemon thread; hand out the newest frame.

    Frames are renumbered by the loop (``index`` 0, 1, 2, … over its whole life, across reopens),
    so ``after_index`` bookkeeping by consumers stays valid when the source restarts its own count.
    A frame is "dropped" when a newer one replaces it before anyone took it.
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        fps_window: float = 5.0,
    ) -> None:
        if not (0 < backoff_initial <= backoff_max):
            raise ValueError("need 0 < backoff_initial <= backoff_max")
        self._source = source
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._fps_window = fps_window
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Everything below is guarded by self._cond.
        self._state = CaptureState.STOPPED
        self._slot: Frame | None = None
        self._slot_taken = False
        self._captured = 0
        self._dropped = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._times: collections.deque[float] = collections.deque(maxlen=512)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the capture thread (once)."""
        if self._thread is not None:
            raise RuntimeError("capture loop already started")
        self._set_state(CaptureState.STARTING)
        self._thread = threading.Thread(
            target=self._run, name=f"capture {self._source.describe()}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish, wake any waiters and join it.

        The source is closed by the capture thread itself (backends are not thread-safe); a read
        blocked in the driver ends at the next frame or the stream timeout.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                _log.warning("capture thread for %s did not stop within %.1fs", self.describe(), timeout)
        with self._cond:
            if self._state not in (CaptureState.FAILED, CaptureState.ENDED):
                self._state = CaptureState.STOPPED
            self._cond.notify_all()

    def __enter__(self) -> CaptureLoop:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- consumers -------------------------------------------------------------------------------

    @property
    def state(self) -> CaptureState:
        with self._cond:
            return self._state

    def describe(self) -> str:
        return self._source.describe()

    def stats(self) -> CaptureStats:
        with self._cond:
            return CaptureStats(
                source=self._source.describe(),
                state=self._state,
                frames_captured=self._captured,
                frames_dropped=self._dropped,
                reconnects=self._reconnects,
                fps=rate(self._times, time.monotonic(), self._fps_window),
                last_error=self._last_error,
            )

    def latest(self, after_index: int = -1) -> Frame | None:
        """The newest frame if it is newer than ``after_index``, else None; never blocks."""
        with self._cond:
            return self._take_locked(after_index)

    def wait_frame(self, after_index: int = -1, timeout: float | None = None) -> Frame | None:
        """Block until a frame newer than ``after_index`` exists and return it.

        Returns None on timeout, or at once when the loop is stopped, failed or ended and has no
        newer frame left.
        """
        with self._cond:
            self._cond.wait_for(
                lambda: self._newer_locked(after_index) or self._state in TERMINAL_STATES, timeout
            )
            return self._take_locked(after_index)

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff_initial
        down_since: float | None = None  # set while the source is failing, for the recovery message
        attempts = 0
        ever_ran = False
        while not self._stop.is_set():
            try:
                if down_since is not None:
                    self._count_reconnect()
                self._source.open()
                frame = self._source.read()
                if frame is not None:
                    self._publish(frame)
                    if down_since is not None:
                        _log.info(
                            "camera recovered: %s after %.1fs (%d failed attempts)",
                            self.describe(),
                            time.monotonic() - down_since,
                            attempts,
                        )
                    down_since, attempts, delay, ever_ran = None, 0, self._backoff_initial, True
                while frame is not None and not self._stop.is_set():
                    frame = self._source.read()
                    if frame is not None:
                        self._publish(frame)
                if frame is None and not self._stop.is_set():
                    _log.info("camera source ended: %s", self.describe())
                    self._close_source()
                    self._set_state(CaptureState.ENDED)
                    return
            except Exception as exc:  # boundary: any backend failure means "reopen later"
                self._close_source()
                message = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, CameraError) and exc.permanent:
                    _log.error("camera failed: %s: %s", self.describe(), exc)
                    self._set_state(CaptureState.FAILED, error=message)
                    return
                attempts += 1
                if down_since is None:
                    down_since = time.monotonic()
                    _log.warning(
                        "camera %s: %s: %s; retrying with backoff up to %gs",
                        "lost" if ever_ran else "unavailable",
                        self.describe(),
                        message,
                        self._backoff_max,
                    )
                else:
                    _log.debug("camera still unavailable: %s: %s", self.describe(), message)
                self._set_state(CaptureState.RECONNECTING, error=message)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self._backoff_max)
        self._close_source()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._slot is not None and not self._slot_taken:
                self._dropped += 1
            self._slot = replace(frame, index=self._captured)
            self._slot_taken = False
            self._captured += 1
            self._times.append(frame.timestamp)
            if not self._stop.is_set():
                self._state = CaptureState.RUNNING
            self._cond.notify_all()

    def _set_state(self, state: CaptureState, error: str | None = None) -> None:
        with self._cond:
            if not self._stop.is_set() or state in TERMINAL_STATES:
                self._state = state
            if error is not None:
                self._last_error = error
            self._cond.notify_all()

    def _count_reconnect(self) -> None:
        with self._cond:
            self._reconnects += 1

    def _close_source(self) -> None:
        try:
            self._source.close()
        except Exception:  # boundary: a failing close must not kill the loop
            _log.debug("closing %s failed", self.describe(), exc_info=True)

    # -- helpers (caller holds self._cond) ---------------------------------------------------------

    def _newer_locked(self, after_index: int) -> bool:
        return self._slot is not None and self._slot.index > after_index

    def _take_locked(self, after_index: int) -> Frame | None:
        if not self._newer_locked(after_index):
            return None
        self._slot_taken = True
        return self._slot


def rate(times: Iterable[float], now: float, window: float) -> float:
    """Events per second over the last ``window`` seconds, from their increasing timestamps; 0 when
    fewer than two fall in the window."""
    recent = [t for t in times if now - t <= window]
    if len(recent) < 2 or recent[-1] <= recent[0]:
        return 0.0
    return (len(recent) - 1) / (recent[-1] - recent[0])
