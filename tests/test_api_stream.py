"""The stream endpoints on a real server whose camera is a clip with known faces (looping file source).

Two concurrent MJPEG clients must get valid JPEG parts, the same bytes for the same frame (one encode
shared by all viewers), with every face blurred; snapshot and info work; without a camera every
stream route answers 503 in the {"error": …} format.
"""

from __future__ import annotations

import asyncio
import sys

import cv2
import numpy as np
import pytest
from aiohttp import ClientResponse
from clip_maker import Clip, detail, make_clip, read_frames
from conftest import AUTH

from daemon.config import with_overrides

PARTS = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("api_stream") / "faces.avi", size=(640, 360), frames=50)


@pytest.fixture(scope="module")
def raw(clip: Clip) -> list[np.ndarray]:
    return read_frames(clip.path)


@pytest.fixture
async def camera_client(make_client, config, clip: Clip):
    cfg = with_overrides(config, camera={"source": f"file:{clip.path}", "loop": True, "fps": 25.0})
    return await make_client(cfg)


async def read_parts(response: ClientResponse, count: int) -> list[tuple[dict[str, str], bytes]]:
    """Parse ``count`` parts of a multipart/x-mixed-replace body."""
    boundary = response.headers["Content-Type"].split("boundary=")[1].strip()
    parts = []
    while len(parts) < count:
        line = await response.content.readline()
        if not line.strip():
            continue
        assert line.strip() == f"--{boundary}".encode(), line
        headers = {}
        while (line := await response.content.readline()).strip():
            name, _, value = line.decode("ascii").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await response.content.readexactly(int(headers["content-length"]))
        parts.append((headers, body))
    return parts


def decode(jpeg: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert bgr is not None, "not a valid JPEG"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def assert_faces_blurred(rgb: np.ndarray, index: int, clip: Clip, raw: list[np.ndarray]) -> None:
    k = index % clip.frame_count  # the file source loops; the capture index keeps counting
    for face in clip.truth[k]:
        if face.visible >= 0.75:
            region = face.clipped(*clip.size)
            assert detail(rgb, region) < 0.1 * detail(raw[k], region), (index, region)


async def test_two_viewers_get_valid_blurred_jpeg_parts_from_one_encode(
    camera_client, clip: Clip, raw: list[np.ndarray]
) -> None:
    async def watch() -> list[tuple[dict[str, str], bytes]]:
        async with camera_client.get("/api/stream.mjpg", headers=AUTH) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
            assert "no-store" in response.headers["Cache-Control"]
            return await read_parts(response, PARTS)

    first, second = await asyncio.gather(watch(), watch())
    by_index = {}
    for headers, body in first + second:
        assert headers["content-type"] == "image/jpeg"
        index = int(headers["x-frame-index"])
        rgb = decode(body)
        assert rgb.shape == (clip.size[1], clip.size[0], 3)
        assert_faces_blurred(rgb, index, clip, raw)
        # The same frame is the same bytes for every viewer: encoded once.
        assert by_index.setdefault(index, body) == body
    for parts in (first, second):
        indexes = [int(h["x-frame-index"]) for h, _ in parts]
        assert indexes == sorted(set(indexes))  # newer frames only, never a repeat
    assert len(by_index) < 2 * PARTS  # the viewers saw common frames


async def test_snapshot_info_and_health(camera_client, clip: Clip, raw: list[np.ndarray]) -> None:
    response = await camera_client.get("/api/snapshot.jpg", headers=AUTH)
    assert response.status == 200 and response.content_type == "image/jpeg"
    rgb = decode(await response.read())
    assert rgb.shape == (clip.size[1], clip.size[0], 3)

    info = await (await camera_client.get("/api/stream/info", headers=AUTH)).json()
    assert info["source"].startswith("file:") and info["capture_state"] == "running"
    assert info["state"] == "running" and info["detector"] == "ok"
    assert info["frames_published"] >= 1 and info["failsafe_frames"] == 0
    for key in ("capture_fps", "processed_fps", "detection_fps", "tracks", "dropped_total"):
        assert isinstance(info[key], int | float), key
    assert set(info["dropped"]) == {"capture", "queue", "unsafe", "failsafe_skipped"}
    assert info["detection_ms"]["mean"] > 0 and info["latency_ms"]["mean"] > 0

    health = await (await camera_client.get("/health", headers=AUTH)).json()
    camera = health["camera"]
    assert camera["state"] == "running" and camera["capture_state"] == "running"
    assert camera["detection_ms"] > 0 and "processed_fps" in camera and "tracks" in camera


async def test_stream_routes_need_a_token(camera_client) -> None:
    for path in ("/api/stream.mjpg", "/api/snapshot.jpg", "/api/stream/info"):
        response = await camera_client.get(path)
        assert response.status == 401, path


async def test_without_a_camera_the_stream_routes_answer_503(make_client, config) -> None:
    client = await make_client(config)
    for path in ("/api/stream.mjpg", "/api/snapshot.jpg", "/api/stream/info"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 503, path
        assert await response.json() == {"error": "no camera configured"}
    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["camera"] == {"state": "disabled"}


async def test_too_many_viewers_are_refused(make_client, config, clip: Clip) -> None:
    cfg = with_overrides(
        config, camera={"source": f"file:{clip.path}", "loop": True}, stream={"max_viewers": 1}
    )
    client = await make_client(cfg)
    async with client.get("/api/stream.mjpg", headers=AUTH) as first:
        assert first.status == 200
        await read_parts(first, 1)
        second = await client.get("/api/stream.mjpg", headers=AUTH)
        assert second.status == 503 and "Retry-After" in second.headers
        assert (await second.json())["error"] == "too many stream viewers"


async def test_a_camera_that_cannot_open_gives_503_with_the_reason(make_client, config, tmp_path) -> None:
    cfg = with_overrides(config, camera={"source": f"file:{tmp_path / 'absent.avi'}"})
    client = await make_client(cfg)
    for _ in range(100):  # the capture thread's first attempt fails within moments
        info = await (await client.get("/api/stream/info", headers=AUTH)).json()
        if info["capture_state"] == "reconnecting":
            break
        await asyncio.sleep(0.05)
    assert info["capture_state"] == "reconnecting" and info["frames_published"] == 0
    assert "video file not found" in info["last_camera_error"]
    for path in ("/api/stream.mjpg", "/api/snapshot.jpg"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 503
        message = (await response.json())["error"]
        assert message.startswith("no frame from the camera (camera reconnecting: "), message
    health = await (await client.get("/health", headers=AUTH)).json()
    assert health["camera"]["capture_state"] == "reconnecting"


async def test_picamera2_missing_is_reported_not_fatal(make_client, config, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import picamera2 → ImportError, as on a PC
    client = await make_client(with_overrides(config, camera={"source": "picamera2"}))
    for _ in range(100):
        camera = (await (await client.get("/health", headers=AUTH)).json())["camera"]
        if camera["capture_state"] == "failed":
            break
        await asyncio.sleep(0.05)
    assert (
        camera["capture_state"] == "failed" and "apt install python3-picamera2" in camera["last_camera_error"]
    )
    response = await client.get("/api/snapshot.jpg", headers=AUTH)
    assert response.status == 503
    assert (await response.json())["error"].startswith("no frame from the camera (camera failed: ")
    assert (await client.get("/health", headers=AUTH)).status == 200  # the rest of the daemon serves on
