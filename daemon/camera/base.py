"""The frame-source capability: what every camera backend promises, independent of the hardware.

A backend (OpenCV device or stream, video file, picamera2) is a small class behind this interface;
``daemon.camera.registry`` picks one from a config string. Sources are synchronous and blocking on
purpose: they run in the capture thread (``daemon.camera.capture``), never on the event loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from daemon.errors import FacegateError


class CameraError(FacegateError):
    """A frame source cannot be opened or read right now (device absent, stream down, file unreadable).

    The capture loop treats it as transient and reopens the source with backoff.
    """

    #: ``True`` when retrying cannot help (a missing library); the capture loop then gives up.
    permanent: bool = False


class CameraBackendMissing(CameraError):
    """The library a backend needs is not installed on this host; retrying will not help."""

    permanent = True


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image.

    ``rgb`` is HxWx3 uint8 RGB, C-contiguous (the vision layer's convention); ``timestamp`` is
    ``time.monotonic()`` at capture, so the tracker and pipelines can reason about elapsed time;
    ``index`` increases by one per frame delivered.
    """

    rgb: np.ndarray
    timestamp: float
    index: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


class FrameSource(ABC):
    """One camera, stream or file, opened, read frame by frame, then closed.

    ``read()`` blocks until a frame is available. It returns ``None`` only when the source has
    ended for good (a file without looping), and raises :class:`CameraError` when the device or
    stream fails, so the caller can tell "finished" from "broken". A source may be opened again
    after ``close()`` (that is how the capture loop reconnects); its frame indexes keep increasing.
    """

    @abstractmethod
    def open(self) -> None:
        """Acquire the device or stream; raise :class:`CameraError` if it is not available."""

    @abstractmethod
    def read(self) -> Frame | None:
        """Block until the next frame; ``None`` at a definitive end of stream."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice or on a source that never opened."""

    @abstractmethod
    def describe(self) -> str:
        """A short label for logs and status pages, without credentials."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """Convert what OpenCV (or picamera2's "RGB888", which is B,G,R in memory) hands us to RGB.

    Grey and 4-channel images are accepted too, because some V4L2 drivers deliver them.
    """
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    raise CameraError(f"unsupported frame layout {image.shape}")


def redact_url(url: str) -> str:
    """Drop the password from a stream URL so it can be logged (rtsp://user:pw@host → rtsp://user:***@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
