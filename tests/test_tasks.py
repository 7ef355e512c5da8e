"""Video blurring as asynchronous tasks, on a real server: submit, poll, fetch, restarts, retention.

The clip has known face positions (tests/clip_maker.py); results are decoded and every face region
checked. A "slow engine" (a VisionEngine whose detect sleeps first) keeps a task running long enough
to stop the daemon under it; a crash is reproduced by leaving a row "running" in the task store, as
a killed daemon would.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from clip_maker import Clip, detail, make_clip, read_frames
from conftest import AUTH

from daemon.api.tasks import TASKS
from daemon.config import Config, with_overrides
from daemon.services.task_store import RUNNING, TaskRecord, TaskStore
from daemon.vision.engine import VisionEngine

FRAMES = 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("tasks") / "faces.avi", size=(640, 360), frames=FRAMES)


@pytest.fixture(scope="module")
def raw(clip: Clip) -> list[np.ndarray]:
    return read_frames(clip.path)


class SlowEngine(VisionEngine):
    """The real engine, 60 ms slower per detection: a task stays 'running' for a few seconds."""

    def detect(self, *args, **kwargs):
        time.sleep(0.06)
        return super().detect(*args, **kwargs)


def task_dir(config: Config) -> Path:
    return config.state_path / "tasks"


async def submit(client, path: Path | None, **fields: str) -> aiohttp.ClientResponse:
    form = aiohttp.FormData(default_to_multipart=True)
    if path is not None:
        form.add_field("video", path.read_bytes(), filename=path.name, content_type="video/x-msvideo")
    for name, value in fields.items():
        form.add_field(name, value)
    return await client.post("/api/v1/tasks/blur-video", data=form, headers=AUTH)


async def poll(client, task_id: str, until, timeout: float = 60.0) -> dict:
    """Poll the task until ``until(status_json)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)
        assert response.status == 200
        body = await response.json()
        if until(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


def finished(body: dict) -> bool:
    return body["status"] in ("done", "failed")


async def fetch_result(client, body: dict, tmp_path: Path) -> list[np.ndarray]:
    response = await client.get(body["result_url"], headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/webm"
    assert response.headers["Content-Disposition"] == 'attachment; filename="faces-blurred.webm"'
    path = tmp_path / "result.webm"
    path.write_bytes(await response.read())
    return read_frames(path)


def assert_blurred_video(frames: list[np.ndarray], clip: Clip, raw: list[np.ndarray]) -> None:
    assert len(frames) == clip.frame_count
    checked = 0
    for k, frame in enumerate(frames):
        for face in clip.truth[k]:
            if face.visible >= 0.75:
                region = face.clipped(*clip.size)
                assert detail(frame, region) < 0.1 * detail(raw[k], region), (k, region)
                checked += 1
    assert checked >= 2 * clip.frame_count


async def test_submit_poll_and_fetch_a_blurred_video(make_client, config, clip, raw, tmp_path) -> None:
    client = await make_client(config)
    response = await submit(client, clip.path)
    assert response.status == 202
    body = await response.json()
    task_id = body["task_id"]
    assert len(task_id) == 32 and body["status"] == "queued"
    assert body["status_url"] == response.headers["Location"] == f"/api/v1/tasks/{task_id}"

    status = await poll(client, task_id, finished)
    assert status["status"] == "done", status
    assert status["progress"] == 1.0 and status["frames_done"] == status["frames_total"] == FRAMES
    assert status["result_url"] == f"/api/v1/tasks/{task_id}/result"
    assert status["error"] is None and status["method"] == "gaussian" and status["output"] == "webm"
    assert status["finished_at"].endswith("Z") and status["expires_at"] > status["finished_at"]
    assert_blurred_video(await fetch_result(client, status, tmp_path), clip, raw)
    assert list((task_dir(config) / "uploads").iterdir()) == []  # the upload is gone once done


async def test_bad_requests_get_clear_errors_and_leave_no_file(make_client, config, tmp_path, clip) -> None:
    client = await make_client(with_overrides(config, tasks={"max_upload_bytes": 4096}))
    not_video = tmp_path / "photo.mp4"
    not_video.write_bytes(b"\xff\xd8\xff\xe0" + bytes(1000))
    cases = [
        (await submit(client, not_video), 400, "Invalid video format"),
        (await submit(client, None, method="gaussian"), 400, "No video provided"),
        (await submit(client, clip.path), 413, "video too large"),
        (
            await client.post("/api/v1/tasks/blur-video", json={"video": "x"}, headers=AUTH),
            400,
            "expected multipart/form-data",
        ),
    ]
    small = tmp_path / "small.avi"
    small.write_bytes(b"RIFF" + bytes(2000))
    cases.append((await submit(client, small, method="swirl"), 400, "unknown method 'swirl'"))
    cases.append((await submit(client, small, method="x" * 2000), 400, "field method too long"))
    cases.append((await submit(client, small, notes="n" * 66_000), 413, "video too large"))
    for response, status, message in cases:
        assert response.status == status
        assert (await response.json())["error"].startswith(message)
    assert list((task_dir(config) / "uploads").iterdir()) == []

    for path in (
        "/api/v1/tasks/" + "0" * 32,
        "/api/v1/tasks/not-an-id",
        "/api/v1/tasks/" + "0" * 32 + "/result",
    ):
        response = await client.get(path, headers=AUTH)
        assert response.status == 404 and "error" in await response.json()
    assert (await client.post("/api/v1/tasks/blur-video")).status == 401


async def test_a_restart_in_the_middle_resumes_the_task(
    make_client, config, model_paths, clip, raw, tmp_path
) -> None:
    first = await make_client(config, engine_factory=lambda: SlowEngine(model_paths))
    task_id = (await (await submit(first, clip.path, method="solid")).json())["task_id"]
    running = await poll(first, task_id, lambda b: b["status"] == "running" and b["frames_done"] >= 3)
    assert running["status"] == "running" and 0 < running["progress"] < 1
    result = await first.get(f"/api/v1/tasks/{task_id}/result", headers=AUTH)
    assert result.status == 409 and (await result.json())["error"] == "task is running"
    await first.close()  # the daemon stops while the task runs

    second = await make_client(config)  # a new daemon on the same state dir
    status = await poll(second, task_id, finished)
    assert status["status"] == "done" and status["restarts"] == 1 and status["method"] == "solid"
    assert_blurred_video(await fetch_result(second, status, tmp_path), clip, raw)


async def test_tasks_left_running_by_a_crash_are_resumed_or_failed(
    make_client, config, clip, tmp_path
) -> None:
    directory = task_dir(config)
    (directory / "uploads").mkdir(parents=True)
    store = TaskStore(directory / "tasks.sqlite3")
    ids = {"resume": "a" * 32, "gave_up": "b" * 32, "lost": "c" * 32}
    for name in ("resume", "gave_up"):
        shutil.copy(clip.path, directory / "uploads" / f"{ids[name]}.avi")
    for name, crashes in (("resume", 0), ("gave_up", 2), ("lost", 0)):
        store.put(
            TaskRecord(
                id=ids[name],
                kind="blur-video",
                status=RUNNING,
                created_at=time.time(),
                started_at=time.time(),
                upload=f"uploads/{ids[name]}.avi",
                original_name="faces.avi",
                options={"method": "gaussian", "output": "mp4"},
                crashes=crashes,
            )
        )
    (directory / "uploads" / "orphan.avi").write_bytes(b"left by a crash mid-upload")
    store.close()

    client = await make_client(config)  # max_attempts 3: the third crash is the last
    resumed = await poll(client, ids["resume"], finished)
    assert resumed["status"] == "done" and resumed["restarts"] == 1
    gave_up = await poll(client, ids["gave_up"], finished)
    assert gave_up["status"] == "failed"
    assert gave_up["error"] == "interrupted 3 times while running; not retried"
    lost = await poll(client, ids["lost"], finished)
    assert lost["status"] == "failed" and "upload" in lost["error"]
    assert list((directory / "uploads").iterdir()) == []  # orphans and failed uploads removed


async def test_finished_tasks_are_deleted_after_the_keep_time(make_client, config, clip) -> None:
    client = await make_client(with_overrides(config, tasks={"keep_hours": 1.0}))
    task_id = (await (await submit(client, clip.path, output="avi")).json())["task_id"]
    status = await poll(client, task_id, finished)
    assert status["status"] == "done" and status["result_url"]
    service = client.server.app[TASKS]
    assert await service.sweep(now=time.time() + 3500) == 0  # kept for an hour
    assert (await client.get(status["result_url"], headers=AUTH)).status == 200
    assert await service.sweep(now=time.time() + 3700) == 1
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=AUTH)).status == 404
    assert (await client.get(status["result_url"], headers=AUTH)).status == 404
    assert list((task_dir(config) / "results").iterdir()) == []


async def test_a_full_queue_answers_503(make_client, config, model_paths, clip) -> None:
    cfg = with_overrides(config, tasks={"max_queued": 1})
    client = await make_client(cfg, engine_factory=lambda: SlowEngine(model_paths))
    assert (await submit(client, clip.path)).status == 202
    response = await submit(client, clip.path)
    assert response.status == 503 and "Retry-After" in response.headers
    assert "error" in await response.json()
