"""A video file as a frame source: for demos, tests and batch processing without a camera.

Paced (the default), a file behaves like a camera: frames come at the file's own frame rate (or a
configured one) and the pipelines see the same timing they would see live. Unpaced, frames come as
fast as they decode, which is what batch processing of a recording wants.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np

from daemon.camera.base import CameraError, Frame, FrameSource, bgr_to_rgb
from daemon.errors import ConfigError

#: Pace used when a file does not state a usable frame rate.
DEFAULT_FILE_FPS = 25.0


class VideoFileSource(FrameSource):
    """Frames of a video file (anything the OpenCV FFmpeg backend decodes: .mp4, .avi, .mkv, …).

    ``loop`` restarts at the first frame at the end instead of ending; ``paced`` sleeps between
    frames to ``fps`` (or the file's frame rate when ``fps`` is None). Frame indexes keep
    increasing across loops and reopens.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        loop: bool = False,
        paced: bool = True,
        fps: float | None = None,
    ) -> None:
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise ConfigError(f"camera.fps must be a positive number, got {fps!r}")
        self._path = Path(path)
        self._loop = loop
        self._paced = paced
        self._fps = fps
        self._cap: cv2.VideoCapture | None = None
        self._period = 0.0
        self._next_due: float | None = None
        self._index = 0

    @property
    def pace_fps(self) -> float | None:
        """Frames per second the source delivers at once opened; None when unpaced."""
        return 1.0 / self._period if self._period else None

    def open(self) -> None:
        self.close()
        if not self._path.is_file():
            raise CameraError(f"video file not found: {self._path}")
        cap = self._open_capture()
        file_fps = cap.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(file_fps) and 0 < file_fps <= 1000):
            file_fps = DEFAULT_FILE_FPS
        self._period = 1.0 / (self._fps or file_fps) if self._paced else 0.0
        self._next_due = None
        self._cap = cap

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"{self.describe()} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if not self._loop:
                return None
            image = self._rewind()
        if self._period:
            self._wait_turn()
        frame = Frame(rgb=bgr_to_rgb(image), timestamp=time.monotonic(), index=self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def describe(self) -> str:
        mode = "paced" if self._paced else "unpaced"
        return f"file:{self._path} ({mode}{', loop' if self._loop else ''})"

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            cap = cv2.VideoCapture(str(self._path))  # whatever backend this OpenCV build has
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot decode video file {self._path}")
        return cap

    def _rewind(self) -> np.ndarray:
        """Back to the first frame; some containers do not seek, so fall back to reopening."""
        assert self._cap is not None
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, image = self._cap.read()
        if not ok or image is None:
            self._cap.release()
            self._cap = self._open_capture()
            ok, image = self._cap.read()
        if not ok or image is None:
            raise CameraError(f"video file {self._path} has no readable frames")
        return image

    def _wait_turn(self) -> None:
        """Sleep until this frame is due. A source that fell behind (slow decode) does not burst
        to catch up: like a camera, it simply goes on from now."""
        now = time.monotonic()
        if self._next_due is None or now - self._next_due > self._period:
            self._next_due = now
        elif self._next_due > now:
            time.sleep(self._next_due - now)
        self._next_due += self._period
