"""OpenCV VideoCapture backends: V4L2 devices (USB webcams, /dev/videoN) and network streams (RTSP, HTTP).

Both keep OpenCV's internal queue as short as the backend allows (CAP_PROP_BUFFERSIZE 1), so a
frame read is a recent frame rather than one that waited behind others: the daemon wants the
newest picture, never a backlog.
"""

from __future__ import annotations

import time
from abc import abstractmethod

import cv2

from daemon.camera.base import CameraError, Frame, FrameSource, bgr_to_rgb, redact_url

#: How long FFmpeg may take to connect to, or wait on, a network stream before giving up. Without
#: these a dead RTSP server can block ``read()`` indefinitely and the loop could never reconnect.
STREAM_TIMEOUT_MS = 10_000


class _LiveCapture(FrameSource):
    """What the two live OpenCV backends share: a live source never ends, so a failed read means
    the device or the network is gone and is reported as :class:`CameraError`."""

    def __init__(self) -> None:
        self._cap: cv2.VideoCapture | None = None
        self._index = 0

    @abstractmethod
    def _open_capture(self) -> cv2.VideoCapture:
        """Create the VideoCapture (not yet checked for isOpened)."""

    def open(self) -> None:
        self.close()
        cap = self._open_capture()
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open {self.describe()}")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1.0)  # some backends ignore it; harmless there
        self._cap = cap

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"{self.describe()} is not open")
        ok, image = self._cap.read()
        timestamp = time.monotonic()
        if not ok or image is None or image.size == 0:
            raise CameraError(f"{self.describe()} stopped delivering frames")
        frame = Frame(rgb=bgr_to_rgb(image), timestamp=timestamp, index=self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class OpenCVDeviceSource(_LiveCapture):
    """A local V4L2 camera, by path (``/dev/video0``) or index (``0``).

    width/height/fps are requests: the driver picks the nearest mode it supports, and the frames
    carry whatever size it chose.
    """

    def __init__(
        self,
        device: str | int,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ) -> None:
        super().__init__()
        self._device = device
        self._width = width
        self._height = height
        self._fps = fps

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self._device, cv2.CAP_V4L2)
        if cap.isOpened():
            if self._width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(self._width))
            if self._height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(self._height))
            if self._fps:
                cap.set(cv2.CAP_PROP_FPS, float(self._fps))
        return cap

    def describe(self) -> str:
        return f"v4l2:{self._device}"


class OpenCVStreamSource(_LiveCapture):
    """A network camera stream (``rtsp://…``, ``http(s)://…`` MJPEG or HLS) decoded by FFmpeg."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url

    def _open_capture(self) -> cv2.VideoCapture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)

    def describe(self) -> str:
        return redact_url(self._url)
