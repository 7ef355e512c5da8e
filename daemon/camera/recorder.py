"""Optional recording of the blurred stream to rotating files in the state directory.

The recorder is one more sink of the pipeline: it only ever sees published frames (blurred or
failsafe), never the camera's. Writing runs in its own thread behind a short queue: a slow disk
drops recorded frames (counted) instead of slowing the stream. Files are Motion-JPEG .avi segments
of ``segment_seconds`` (every OpenCV build writes them, every player reads them); the oldest are
deleted beyond ``keep_segments``. Playback runs at the configured fps: frames the pipeline dropped
are simply missing, so time in a segment is approximate.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path
from typing import Any

import cv2

from daemon.camera.pipeline import PublishedFrame

_log = logging.getLogger(__name__)

SEGMENT_GLOB = "stream-*.avi"


class StreamRecorder:
    def __init__(
        self,
        directory: Path,
        fps: float,
        segment_seconds: float = 300.0,
        keep_segments: int = 12,
        queue_frames: int = 16,
    ) -> None:
        if fps <= 0 or segment_seconds <= 0 or keep_segments < 1 or queue_frames < 1:
            raise ValueError("need fps > 0, segment_seconds > 0, keep_segments >= 1, queue_frames >= 1")
        self.directory = Path(directory)
        self._fps = fps
        self._segment_seconds = segment_seconds
        self._keep = keep_segments
        self._queue: collections.deque[PublishedFrame] = collections.deque(maxlen=queue_frames)
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._writer: cv2.VideoWriter | None = None
        self._segment: Path | None = None
        self._segment_started = 0.0
        self._size: tuple[int, int] | None = None
        self._serial = 0
        self._written = 0
        self._dropped = 0
        self._error: str | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="stream recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, close the current segment."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __call__(self, frame: PublishedFrame) -> None:
        """The pipeline sink: queue the frame (the oldest queued one goes if the writer is behind)."""
        with self._cond:
            if len(self._queue) == self._queue.maxlen:
                self._dropped += 1
            self._queue.append(frame)
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "directory": str(self.directory),
                "segment": self._segment.name if self._segment else None,
                "frames_written": self._written,
                "frames_dropped": self._dropped,
                "error": self._error,
            }

    def segments(self) -> list[Path]:
        """Recorded files, oldest first."""
        return sorted(self.directory.glob(SEGMENT_GLOB))

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or bool(self._queue))
                if not self._queue and self._stop:
                    break
                frame = self._queue.popleft()
            try:
                self._write(frame)
            except Exception as exc:  # boundary: a full or failing disk must not take the stream down
                with self._cond:
                    if self._error is None:
                        _log.error("recording failed: %s", exc)
                    self._error = str(exc)
                self._close()
        self._close()

    def _write(self, frame: PublishedFrame) -> None:
        height, width = frame.rgb.shape[:2]
        now = time.monotonic()
        if (
            self._writer is None
            or self._size != (width, height)
            or now - self._segment_started >= self._segment_seconds
        ):
            self._open(width, height, now)
        assert self._writer is not None
        self._writer.write(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
        with self._cond:
            self._written += 1
            self._error = None

    def _open(self, width: int, height: int, now: float) -> None:
        self._close()
        self._serial += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.directory / f"stream-{stamp}-{self._serial:04d}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), self._fps, (width, height))
        if not writer.isOpened():
            writer.release()
            raise OSError(f"cannot write {path}")
        self._writer, self._segment, self._size, self._segment_started = writer, path, (width, height), now
        for old in self.segments()[: -self._keep]:
            old.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
