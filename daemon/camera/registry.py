"""Choose a frame-source backend from the config string, through one explicit table.

Accepted specs (the first matching form wins):

=====================================  ===========  =============================================
spec                                   backend      notes
=====================================  ===========  =============================================
``picamera2`` / ``picamera2:1``        picamera2    Pi CSI camera N (default 0)
``v4l2:/dev/video0`` / ``v4l2:0``      v4l2         OpenCV V4L2, by path or index
``/dev/video0`` / ``0``                v4l2         shorthands
``rtsp://…``, ``rtsps://…``            rtsp         OpenCV FFmpeg, credentials redacted in logs
``http://…``, ``https://…``            http         MJPEG/HLS over HTTP, OpenCV FFmpeg
``file:PATH``, ``PATH.mp4|.avi|.mkv``  file         paced like a camera unless ``paced=False``
=====================================  ===========  =============================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from daemon.camera.base import FrameSource
from daemon.camera.file_source import VideoFileSource
from daemon.camera.opencv_source import OpenCVDeviceSource, OpenCVStreamSource
from daemon.camera.picamera2_source import Picamera2Source
from daemon.errors import ConfigError

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov"})
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
PICAMERA2_DEFAULT_SIZE = (1280, 720)

SPEC_HELP = (
    "expected picamera2[:N], v4l2:/dev/videoN, v4l2:N, /dev/videoN, N, rtsp://…, http(s)://…, "
    "file:PATH or a path ending in .mp4/.avi/.mkv/.mov"
)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """The camera settings from config that backends may honour (each says which it does)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: bool = False
    paced: bool = True


def _picamera2(target: str, options: SourceOptions) -> FrameSource:
    if target and not target.isdigit():
        raise ConfigError(f"camera.source: picamera2:{target}: the camera number must be an integer")
    width = options.width or PICAMERA2_DEFAULT_SIZE[0]
    height = options.height or PICAMERA2_DEFAULT_SIZE[1]
    return Picamera2Source(int(target or 0), width, height, options.fps)


def _v4l2(target: str, options: SourceOptions) -> FrameSource:
    if not target:
        raise ConfigError("camera.source: v4l2: needs a device path or index, e.g. v4l2:/dev/video0")
    device: str | int = int(target) if target.isdigit() else target
    return OpenCVDeviceSource(device, options.width, options.height, options.fps)


def _stream(target: str, options: SourceOptions) -> FrameSource:
    return OpenCVStreamSource(target)


def _file(target: str, options: SourceOptions) -> FrameSource:
    if not target:
        raise ConfigError("camera.source: file: needs a path, e.g. file:/var/lib/facegate/demo.mp4")
    return VideoFileSource(target, loop=options.loop, paced=options.paced, fps=options.fps)


#: Backend kind → factory(target, options). The one place a new backend is registered.
SOURCE_BACKENDS: dict[str, Callable[[str, SourceOptions], FrameSource]] = {
    "picamera2": _picamera2,
    "v4l2": _v4l2,
    "rtsp": _stream,
    "http": _stream,
    "file": _file,
}


def parse_source_spec(spec: str) -> tuple[str, str]:
    """Split a config string into (backend kind, target) without touching any device or file."""
    text = spec.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if text.lower() == "picamera2" or (colon and scheme == "picamera2"):
        return "picamera2", rest
    if colon and scheme in STREAM_SCHEMES and rest.startswith("//"):
        return ("rtsp" if scheme.startswith("rtsp") else "http"), text
    if colon and scheme == "v4l2":
        return "v4l2", rest
    if colon and scheme == "file":
        return "file", rest
    if text.isdigit() or text.startswith("/dev/video"):
        return "v4l2", text
    if text and PurePath(text).suffix.lower() in VIDEO_SUFFIXES:
        return "file", text
    raise ConfigError(f"camera.source: unknown source {spec!r}: {SPEC_HELP}")


def source_from_config(
    spec: str,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    loop: bool = False,
    *,
    paced: bool = True,
) -> FrameSource:
    """Build (but do not open) the frame source a config string names.

    ``width``/``height``/``fps`` are requests to cameras (V4L2, picamera2); a network stream
    delivers its own size; a file delivers its own size, uses ``fps`` as its pace when given
    (else its own rate) and honours ``loop`` and ``paced``.
    """
    for name, value in (("width", width), ("height", height), ("fps", fps)):
        if value is not None and not value > 0:
            raise ConfigError(f"camera.{name} must be positive, got {value!r}")
    kind, target = parse_source_spec(spec)
    options = SourceOptions(width=width, height=height, fps=fps, loop=loop, paced=paced)
    return SOURCE_BACKENDS[kind](target, options)
