"""The daemon as systemd runs it: a real process, a real datagram socket as NOTIFY_SOCKET, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import AUTH
from daemon_support import Daemon

from daemon.config import PACKAGE_MODELS_DIR

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    yield sock, str(path)
    sock.close()


def receive_until(sock: socket.socket, wanted: str, seen: list[str]) -> None:
    while not any(wanted in m for m in seen):
        seen.append(sock.recv(4096).decode())


def test_systemd_lifecycle_ready_watchdog_stopping(tmp_path, notify_socket):
    sock, path = notify_socket
    daemon = Daemon(tmp_path, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    try:
        port = int(daemon.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        messages: list[str] = []
        receive_until(sock, "READY=1", messages)
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=serving" in ready
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200 and json.load(response) == {"status": "ok"}
        # first start on loopback: an admin token in the state dir (0600), the store holds only its hash
        state = tmp_path / "state"
        token = (state / "admin-token").read_text().strip()
        assert (state / "admin-token").stat().st_mode & 0o077 == 0
        assert token not in (state / "tokens.json").read_text()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/health", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "ok" and body["model"] == "blazeface_full_range"
        # the event loop pings every WATCHDOG_USEC/2 = 0.1 s
        start = len(messages)
        deadline = time.monotonic() + 10
        while sum("WATCHDOG=1" in m for m in messages[start:]) < 3 and time.monotonic() < deadline:
            messages.append(sock.recv(4096).decode())
        assert sum("WATCHDOG=1" in m for m in messages[start:]) >= 3
        daemon.proc.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", messages)
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.stop()


async def test_health_is_503_until_models_are_loaded(aiohttp_client, config, model_paths, tokens):
    """The socket listens while the interpreters load; /health says 503 until they are ready."""
    from daemon.app import build_app
    from daemon.appkeys import STATUS
    from daemon.vision.engine import VisionEngine

    release = threading.Event()

    def slow_engine() -> VisionEngine:
        release.wait(30)
        return VisionEngine(model_paths)

    app = build_app(config, model_paths, tokens, engine_factory=slow_engine)
    client = await aiohttp_client(app)
    response = await client.get("/health")
    assert response.status == 503
    assert (await response.json())["status"] == "loading"
    release.set()
    await app[STATUS].wait_loaded()
    assert await (await client.get("/health")).json() == {"status": "ok"}  # liveness only without a token
    response = await client.get("/health", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["model"] == "blazeface_full_range"
    assert body["workers"]["workers"] == config.workers.count


async def test_health_reports_a_failed_model_load(aiohttp_client, config, model_paths, tokens):
    from daemon.app import build_app
    from daemon.errors import ModelError

    def broken_engine():
        raise ModelError("cannot load model x.tflite: bad file")

    client = await aiohttp_client(build_app(config, model_paths, tokens, engine_factory=broken_engine))
    for _ in range(100):
        response = await client.get("/health", headers=AUTH)
        body = await response.json()
        if body["status"] != "loading":
            break
        await asyncio.sleep(0.05)
    assert response.status == 503
    assert body["status"] == "error" and "x.tflite" in body["error"]


def test_refuses_to_start_with_an_altered_model(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(PACKAGE_MODELS_DIR, models)
    with (models / "face_detection_short_range.tflite").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    daemon = Daemon(tmp_path, {"FACEGATE_MODELS_DIR": str(models)})
    try:
        assert daemon.proc.wait(timeout=60) == 3  # EXIT_MODELS: the unit does not restart it
        daemon.wait_for(r"face_detection_short_range\.tflite has sha256 [0-9a-f]{64}, expected")
    finally:
        daemon.stop()


def test_refuses_to_start_with_a_missing_model(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(PACKAGE_MODELS_DIR, models)
    (models / "face_detection_full_range.tflite").unlink()
    daemon = Daemon(tmp_path, {"FACEGATE_MODELS_DIR": str(models)})
    try:
        assert daemon.proc.wait(timeout=60) == 3  # EXIT_MODELS
        daemon.wait_for(r"model file missing: .*face_detection_full_range\.tflite")
    finally:
        daemon.stop()
