"""Writing blurred frames to a video file: one small writer per container, chosen by the file suffix.

Why PyAV: the pip OpenCV has no H.264 or VP9 encoder, so its .mp4 files were MPEG-4 part 2, which
browsers do not play. PyAV's wheels carry FFmpeg with libvpx (VP9) and libx264 (H.264), on x86_64 and
aarch64 alike.

- ``.webm``: VP9 (libvpx, BSD licence) in WebM, the default: every current browser plays it and
  nothing in it is under the GPL or a patent pool.
- ``.mp4`` / ``.m4v`` / ``.mov`` / ``.mkv``: H.264 (libx264) — plays everywhere, including older
  Safari and most hardware players. x264 is GPL-2.0 and H.264 is patent-licensed: a product that ships
  H.264 output should check both; it is therefore opt-in (``tasks.output: mp4``).
- ``.avi``: Motion JPEG through OpenCV (large files, every frame stands alone; for tools, not browsers).

Frames are RGB uint8 of the size given at open; odd sizes are padded by one edge row/column (4:2:0
video needs even sizes). Nothing but video is written: no audio, no metadata from the source.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from daemon.errors import FacegateError


class VideoWriteError(FacegateError):
    """The output cannot be written (unknown container, encoder missing, disk error)."""


class FrameWriter(Protocol):
    def write(self, rgb: np.ndarray) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class PyAVWriter:
    """One video stream encoded by FFmpeg (through PyAV) into a container file."""

    def __init__(
        self, path: Path, width: int, height: int, fps: float, codec: str, options: dict[str, str]
    ) -> None:
        import av  # imported here: only the writers that need it pay for it

        self._width, self._height = width, height
        try:
            self._container = av.open(str(path), mode="w")
            rate = Fraction(fps).limit_denominator(1001)
            stream = self._container.add_stream(codec, rate=rate)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise VideoWriteError(f"cannot write {path.suffix} video with {codec}: {exc}") from exc
        assert isinstance(stream, av.VideoStream), codec  # WRITERS passes video codecs only
        self._stream = stream
        self._stream.width = width + width % 2
        self._stream.height = height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = dict[str, object](options)
        self._stream.thread_count = 2
        self._frame_type = av.VideoFrame

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[1] % 2 or rgb.shape[0] % 2:
            rgb = np.pad(rgb, ((0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)), mode="edge")
        frame = self._frame_type.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():  # flush the encoder's delayed frames
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        self._container.close()


class OpenCVMJPEGWriter:
    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
        if not self._writer.isOpened():
            raise VideoWriteError(f"cannot write {path.suffix} video to {path.parent}")

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()

    def abort(self) -> None:
        self._writer.release()


VP9_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "crf": "32", "b": "0"}
H264_OPTIONS = {"preset": "veryfast", "crf": "23", "movflags": "+faststart"}

Opener = Callable[[Path, int, int, float], FrameWriter]
#: File suffix → writer. The one table every caller (tasks, `facegate blur-video`) goes through.
WRITERS: dict[str, Opener] = {
    ".webm": lambda p, w, h, fps: PyAVWriter(p, w, h, fps, "libvpx-vp9", VP9_OPTIONS),
    ".mp4": lambda p, w, h, fps: PyAVWriter(p, w, h, fps, "libx264", H264_OPTIONS),
    ".m4v": lambda p, w, h, fps: PyAVWriter(p, w, h, fps, "libx264", H264_OPTIONS),
    ".mov": lambda p, w, h, fps: PyAVWriter(p, w, h, fps, "libx264", H264_OPTIONS),
    ".mkv": lambda p, w, h, fps: PyAVWriter(p, w, h, fps, "libx264", H264_OPTIONS),
    ".avi": lambda p, w, h, fps: OpenCVMJPEGWriter(p, w, h, fps),
}


def open_writer(path: Path, width: int, height: int, fps: float, suffix: str | None = None) -> FrameWriter:
    """A writer for ``path``; the container and codec follow ``suffix`` (default: the path's)."""
    key = (suffix or path.suffix).lower()
    opener = WRITERS.get(key)
    if opener is None:
        raise VideoWriteError(f"unsupported output type {key!r}; use one of {', '.join(WRITERS)}")
    return opener(path, width, height, fps)
