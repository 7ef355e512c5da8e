"""A stand-in for the ``picamera2`` package on hosts without a Raspberry Pi camera.

It mimics only the part of the real API that ``daemon.camera.picamera2_source`` uses, with the
same signatures, defaults and failure modes (checked against picamera2's picamera2.py):

* ``Picamera2(camera_num=0)`` raises RuntimeError("Camera __init__ sequence did not complete.")
  when that camera is absent;
* ``create_video_configuration(main={...}, controls={...})`` returns a dict whose "main" stream
  merges the caller's keys over the defaults ({"format": "XBGR8888", "size": (1280, 720)});
* ``configure`` refuses odd sizes and unknown formats, and a started camera;
* ``capture_array("main")`` returns (height, width, 3) uint8 for "RGB888" laid out B, G, R in
  memory, like the real camera (Picamera2 manual, appendix A).

The "scene" is fixed so tests can check colour handling: the left half is red, the right half
blue (in true RGB), and the green channel of pixel (0, 0) holds the frame number modulo 256.

Test knobs are class attributes; tests load this file as a fresh module each time (see
tests/test_camera_sources.py), so nothing leaks between tests.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

_FORMATS = {"RGB888": 3, "BGR888": 3, "XBGR8888": 4, "XRGB8888": 4}


class Picamera2:
    cameras_present: ClassVar[int] = 1  # cameras attached to this fake host
    fail_after: ClassVar[int | None] = None  # capture_array raises RuntimeError after this many frames
    instances: ClassVar[list[Picamera2]] = []  # every object created, for assertions

    def __init__(self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None) -> None:
        if camera_num >= type(self).cameras_present:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.frames = 0
        self.calls: list[str] = []
        type(self).instances.append(self)

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 6,
        controls: dict[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
    ) -> dict[str, Any]:
        self._check_open()
        stream = {"format": "XBGR8888", "size": (1280, 720)} | dict(main or {})
        width, height = stream["size"]
        stream["size"] = (width - width % 2, height - height % 2)  # align_stream(optimal=False)
        return {
            "use_case": "video",
            "transform": transform,
            "colour_space": colour_space,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": stream,
            "lores": lores,
            "raw": raw,
            "controls": {"FrameDurationLimits": (33333, 33333)} | dict(controls or {}),
            "display": display,
            "encode": encode,
        }

    def configure(self, camera_config: dict[str, Any]) -> None:
        self._check_open()
        self.calls.append("configure")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        main = camera_config["main"]
        if main["format"] not in _FORMATS:
            raise RuntimeError(f"Bad format {main['format']} in stream main")
        size = main["size"]
        if type(size) is not tuple or len(size) != 2:
            raise RuntimeError("size in main stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")
        self.camera_config = camera_config

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        self._check_open()
        self.calls.append("start")
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None) -> np.ndarray:
        self._check_open()
        if not self.started:
            raise RuntimeError("Camera is not running")
        if name != "main":
            raise KeyError(name)
        limit = type(self).fail_after
        if limit is not None and self.frames >= limit:
            raise RuntimeError("Device or resource busy: camera disconnected")
        assert self.camera_config is not None
        fmt = self.camera_config["main"]["format"]
        width, height = self.camera_config["main"]["size"]
        rgb = np.zeros((height, width, 3), dtype=np.uint8)
        rgb[:, : width // 2, 0] = 255  # left half red
        rgb[:, width // 2 :, 2] = 255  # right half blue
        rgb[0, 0, 1] = self.frames % 256
        self.frames += 1
        # RGB888/XRGB8888 are B, G, R (, A) in memory; BGR888/XBGR8888 are R, G, B (, A).
        pixels = rgb[:, :, ::-1] if fmt in ("RGB888", "XRGB8888") else rgb
        if _FORMATS[fmt] == 4:
            alpha = np.full((height, width, 1), 255, dtype=np.uint8)
            pixels = np.concatenate([pixels, alpha], axis=2)
        return np.ascontiguousarray(pixels)

    def stop(self) -> None:
        self.calls.append("stop")
        self.started = False

    def close(self) -> None:
        self.calls.append("close")
        if self.started:
            self.stop()
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("Camera is closed")
