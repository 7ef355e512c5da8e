"""A camera that returns garbage, stalls and comes back gives the door a status, not a crash.

The frame source here stands in for a broken camera driver (shaped like daemon.camera.base's
FrameSource): garbage arrays first, then a failure (the capture loop reconnects), then real frames of
a real face photo. The door must count the garbage, report the outage, and still grant afterwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from conftest import FACES
from door_clips import make_library

from daemon.camera.base import CameraError, Frame, FrameSource
from daemon.camera.capture import CaptureLoop
from daemon.config import with_overrides
from daemon.library.keys import resolve_key_path
from daemon.services.door_service import DoorService
from daemon.services.library_service import LibraryService
from daemon.vision.embed import DESCRIPTOR_SIZE, model_id_of


class BrokenCamera(FrameSource):
    """Garbage frames, then an outage until ``recover`` is set, then a real face at 10 fps."""

    def __init__(self, face_rgb: np.ndarray) -> None:
        self.face = face_rgb
        self.recover = threading.Event()
        self.failed = threading.Event()
        self.reads = 0

    def open(self) -> None:
        if self.reads >= 3 and not self.recover.is_set():
            raise CameraError("device not responding")

    def read(self) -> Frame | None:
        self.reads += 1
        time.sleep(0.1)
        if self.reads <= 3:
            garbage = [
                np.zeros((4, 4), np.uint8),
                np.ones((8, 8, 3), np.float32),
                np.zeros((2, 2, 4), np.uint8),
            ]
            return Frame(garbage[self.reads - 1], time.monotonic(), self.reads)  # type: ignore[arg-type]
        if not self.recover.is_set():
            self.failed.set()
            raise CameraError("read timed out")
        return Frame(self.face, time.monotonic(), self.reads)

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "broken test camera"


async def test_garbage_and_outage_give_a_status_then_the_door_recovers(
    config, engine, tmp_path: Path
) -> None:
    tokens = make_library(config.database_path, engine)
    cfg = with_overrides(config, checkin={"enabled": True, "groups": ["staff"]})
    bgr = cv2.imread(str(FACES / "obama.jpg"), cv2.IMREAD_COLOR)
    face = np.ascontiguousarray(cv2.cvtColor(cv2.resize(bgr, None, fx=0.5, fy=0.5), cv2.COLOR_BGR2RGB))
    camera = BrokenCamera(face)
    capture = CaptureLoop(camera, backoff_initial=0.1, backoff_max=0.2)
    library = LibraryService(
        cfg.database_path,
        model_id_of(cfg.models.embedding),
        DESCRIPTOR_SIZE,
        resolve_key_path(cfg.security.key_file, cfg.state_path),
    )
    await library.start()
    door = DoorService(cfg, lambda: engine, library, lambda: capture)
    capture.start()
    await door.start(asyncio.get_running_loop())
    try:
        events: list[dict] = []
        assert door.events is not None
        door.events.add_listener(events.append)
        await asyncio.get_running_loop().run_in_executor(None, camera.failed.wait, 10)
        await asyncio.sleep(1.0)
        health = door.health()
        assert health["bad_frames"] == 3 and health["errors"] == 0
        assert health["state"] == "waiting for frames" and events == []
        camera.recover.set()
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.1)
        assert [(e["decision"], e["faceToken"]) for e in events] == [("granted", tokens["obama"])]
        assert door.health()["state"] == "running"
    finally:
        await door.stop()
        capture.stop()
        await library.close()


async def test_a_settings_change_reaches_the_running_door(config, engine) -> None:
    tokens = make_library(config.database_path, engine)
    cfg = with_overrides(config, checkin={"enabled": True, "groups": ["staff"]})
    bgr = cv2.imread(str(FACES / "obama.jpg"), cv2.IMREAD_COLOR)
    face = np.ascontiguousarray(cv2.cvtColor(cv2.resize(bgr, None, fx=0.5, fy=0.5), cv2.COLOR_BGR2RGB))
    camera = BrokenCamera(face)
    capture = CaptureLoop(camera, backoff_initial=0.1, backoff_max=0.2)
    library = LibraryService(
        cfg.database_path,
        model_id_of(cfg.models.embedding),
        DESCRIPTOR_SIZE,
        resolve_key_path(cfg.security.key_file, cfg.state_path),
    )
    await library.start()
    door = DoorService(cfg, lambda: engine, library, lambda: capture)
    capture.start()
    await door.start(asyncio.get_running_loop())
    try:
        events: list[dict] = []
        assert door.events is not None
        door.events.add_listener(events.append)
        await asyncio.get_running_loop().run_in_executor(None, camera.failed.wait, 10)
        await door.update_settings({"groups": ["visitors"]})  # a group that does not exist
        camera.recover.set()
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.1)
        assert [(e["decision"], e["faceToken"], e["reason"]) for e in events] == [
            ("denied", tokens["obama"], "not in the door's groups")
        ]
        assert door.health()["missing_groups"] == ["visitors"]
    finally:
        await door.stop()
        capture.stop()
        await library.close()
