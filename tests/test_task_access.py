"""Video tasks belong to the token that submitted them: others get 404, admin sees all; cancel works.

Real server, real task store; a slow engine (60 ms per detection) keeps a task running long enough to
cancel it while it runs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from clip_maker import Clip, make_clip

from daemon.services.task_store import TaskStore
from daemon.services.tokens import ADMIN, PRIVACY, TokenRegistry
from daemon.vision.engine import VisionEngine

ALICE = "alice-token-0123456789abcdefgh"
BOB = "bob-token-zyxwvutsrq987654321"
ROOT = "root-token-4f3e2d1c0b9a8f7e6d"


def who(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class SlowEngine(VisionEngine):
    def detect(self, *args, **kwargs):
        time.sleep(0.06)
        return super().detect(*args, **kwargs)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("task_access") / "faces.avi", size=(320, 180), frames=30)


@pytest.fixture
def registry() -> TokenRegistry:
    return TokenRegistry.of([("alice", ALICE, [PRIVACY]), ("bob", BOB, [PRIVACY]), ("root", ROOT, [ADMIN])])


async def submit(client, path: Path, token: str) -> str:
    form = aiohttp.FormData()
    form.add_field("video", path.read_bytes(), filename=path.name, content_type="video/x-msvideo")
    response = await client.post("/api/v1/tasks/blur-video", data=form, headers=who(token))
    assert response.status == 202
    return (await response.json())["task_id"]


async def wait_status(client, task_id: str, token: str, wanted: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = await (await client.get(f"/api/v1/tasks/{task_id}", headers=who(token))).json()
        if body["status"] in wanted or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


async def test_tasks_are_visible_to_their_owner_and_admin_only(make_client, config, registry, clip):
    client = await make_client(config, tokens=registry)
    task_id = await submit(client, clip.path, ALICE)
    body = await wait_status(client, task_id, ALICE, {"done", "failed"})
    assert body["status"] == "done"
    store = TaskStore(config.state_path / "tasks" / "tasks.sqlite3")
    assert store.get(task_id).principal == "alice"  # the store records the owner
    store.close()
    for path in (f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}/result"):
        response = await client.get(path, headers=who(BOB))
        assert response.status == 404 and await response.json() == {"error": f"no task {task_id}"}
        assert (await client.get(path, headers=who(ROOT))).status == 200
        assert (await client.get(path, headers=who(ALICE))).status == 200
    assert (await client.delete(f"/api/v1/tasks/{task_id}", headers=who(BOB))).status == 404
    # the owner deletes a finished task: record and result are gone
    assert (await client.delete(f"/api/v1/tasks/{task_id}", headers=who(ALICE))).status == 204
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=who(ALICE))).status == 404
    assert list((config.state_path / "tasks" / "results").iterdir()) == []


async def test_cancel_a_running_and_a_queued_task(make_client, config, registry, clip, model_paths):
    client = await make_client(config, tokens=registry, engine_factory=lambda: SlowEngine(model_paths))
    running = await submit(client, clip.path, ALICE)
    queued = await submit(client, clip.path, ALICE)  # tasks.workers is 1: it waits behind the first
    body = await wait_status(client, running, ALICE, {"running"})
    assert body["status"] == "running"

    response = await client.delete(f"/api/v1/tasks/{queued}", headers=who(ALICE))
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "failed" and body["error"] == "cancelled"

    response = await client.delete(f"/api/v1/tasks/{running}", headers=who(ROOT))  # admin may cancel it
    assert response.status == 202 and (await response.json())["status"] == "running"
    body = await wait_status(client, running, ALICE, {"done", "failed"})
    assert body["status"] == "failed" and body["error"] == "cancelled"
    assert body["frames_done"] < body["frames_total"] or body["frames_total"] == 0
    assert list((config.state_path / "tasks" / "uploads").iterdir()) == []
    assert list((config.state_path / "tasks" / "results").iterdir()) == []
    # the worker is free again: a new task runs to the end
    third = await submit(client, clip.path, BOB)
    assert (await wait_status(client, third, BOB, {"done", "failed"}))["status"] == "done"
