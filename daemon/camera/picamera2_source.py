"""The Raspberry Pi camera (CSI ribbon cameras through libcamera) via picamera2.

picamera2 comes from Raspberry Pi OS's apt repository, not from PyPI wheels that work everywhere,
so it is imported only when this backend is opened: the daemon runs on any host without it, and a
Pi without it gets a message that says how to install it.

Colour order: picamera2's "RGB888" format is named after the DRM fourcc and is laid out B, G, R
in memory (the Picamera2 manual, appendix A: RGB888 pixels are [B, G, R], BGR888 are [R, G, B]).
We ask for RGB888 because it is what OpenCV expects and what every Pi ISP produces, and convert to
the vision layer's RGB here, once.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from daemon.camera.base import CameraBackendMissing, CameraError, Frame, FrameSource, bgr_to_rgb

INSTALL_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS apt install python3-picamera2 (it is not "
    "installable from PyPI on most hosts) and give the daemon's virtualenv access to system "
    "packages (python3 -m venv --system-site-packages), or use an OpenCV camera source instead "
    "(camera.source: /dev/video0)"
)


def broken_hint(exc: BaseException) -> str:
    """What to say when picamera2 is installed but fails to import (retrying cannot help)."""
    reason = f"picamera2 is installed but cannot be imported: {type(exc).__name__}: {exc}"
    if "dtype size changed" in str(exc) or "numpy" in str(exc).lower():
        return (
            f"{reason}. The virtualenv's numpy is not the one apt's simplejpeg was built for: install "
            "simplejpeg from PyPI into the virtualenv (scripts/install-pi does; docs/OPERATIONS.md)"
        )
    return reason


class Picamera2Source(FrameSource):
    """Camera ``camera_num`` through picamera2, at ``width`` x ``height`` (aligned by libcamera)."""

    def __init__(
        self,
        camera_num: int = 0,
        width: int = 1280,
        height: int = 720,
        fps: float | None = None,
    ) -> None:
        self._camera_num = camera_num
        self._size = (int(width), int(height))
        self._fps = fps
        self._camera: Any = None
        self._index = 0

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2  # deliberately lazy, see module doc
        except ImportError as exc:
            raise CameraBackendMissing(INSTALL_HINT) from exc
        except Exception as exc:  # boundary: installed but broken, e.g. a numpy ABI clash
            raise CameraBackendMissing(broken_hint(exc)) from exc
        camera: Any = None
        try:
            camera = Picamera2(self._camera_num)
            controls: dict[str, Any] = {}
            if self._fps:
                frame_us = round(1_000_000 / self._fps)
                controls["FrameDurationLimits"] = (frame_us, frame_us)
            config = camera.create_video_configuration(
                main={"size": self._size, "format": "RGB888"}, controls=controls
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # boundary: libcamera reports absence/busy as RuntimeError, IndexError…
            if camera is not None:
                _close_quietly(camera)
            raise CameraError(f"cannot start {self.describe()}: {exc}") from exc
        self._camera = camera

    def read(self) -> Frame | None:
        if self._camera is None:
            raise CameraError(f"{self.describe()} is not open")
        try:
            bgr = self._camera.capture_array("main")
        except Exception as exc:  # boundary: a camera unplugged mid-stream surfaces as anything
            raise CameraError(f"{self.describe()} stopped delivering frames: {exc}") from exc
        frame = Frame(rgb=bgr_to_rgb(bgr), timestamp=time.monotonic(), index=self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            _close_quietly(camera)

    def describe(self) -> str:
        return f"picamera2:{self._camera_num} {self._size[0]}x{self._size[1]}"


def _close_quietly(camera: Any) -> None:
    """Stop and close, even if stopping fails: the camera must be released for the next open."""
    with contextlib.suppress(Exception):  # boundary: best effort on a camera that may be gone
        camera.stop()
    with contextlib.suppress(Exception):
        camera.close()
