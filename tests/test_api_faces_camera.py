"""POST /api/faces/camera: enrolment from the device's own camera (the frame never leaves the device),
through a real server whose camera is a file source playing a still scene with a face."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
from api_device_support import call, search
from conftest import AUTH, FACES, read_rgb

from daemon.config import with_overrides


def still_scene(path: Path, photo: str = "obama.jpg", frames: int = 10) -> Path:
    """A 1280×720 MJPEG clip: the same frame (a real photo on a grey wall) over and over."""
    canvas = np.full((720, 1280, 3), 110, np.uint8)
    rgb = read_rgb(FACES / photo)
    scale = 600 / rgb.shape[0]
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x = (1280 - small.shape[1]) // 2
    canvas[60 : 60 + small.shape[0], x : x + small.shape[1]] = small
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (1280, 720))
    for _ in range(frames):
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


async def until_frame(client) -> None:
    for _ in range(200):
        body = await (await client.get("/api/stream/info", headers=AUTH)).json()
        if body.get("frames_captured", 0) > 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the camera delivered no frame")


async def test_enrol_from_the_camera_then_find_the_person(make_client, config, tmp_path):
    clip = still_scene(tmp_path / "door.avi")
    client = await make_client(with_overrides(config, camera={"source": f"file:{clip}", "fps": 10.0}))
    await until_frame(client)
    data = (await call(client, "POST", "/api/faces/camera", {"name": "at the door"}))["data"]
    assert set(data) == {"id", "imageId", "faceToken", "rect"}
    assert 0 <= data["rect"]["left"] < data["rect"]["right"] <= 1280
    face = (await call(client, "GET", f"/api/faces/faceToken/{data['faceToken']}"))["data"]
    assert face["name"] == "at the door"
    found = await search(client, FACES / "obama2.jpg", ["default"])
    assert found["top1"]["faceToken"] == data["faceToken"]


async def test_without_a_camera_it_is_a_clear_400(make_client, config):
    client = await make_client(config)
    answer = await call(client, "POST", "/api/faces/camera", {"name": "x"}, 400, 104900)
    assert "no camera configured" in answer["msg"]
    assert (await call(client, "GET", "/api/faces"))["data"]["totalFaces"] == 0
