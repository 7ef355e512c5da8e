"""`facegate enroll` / `facegate search` run as subprocesses against a real daemon on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from conftest import AUTH, FACES, NO_FACES, REPO, TEST_TOKEN


@pytest.fixture
async def daemon(make_client, config):
    client = await make_client(config)
    return client, str(client.make_url("")).rstrip("/")


async def facegate(
    *args: str, url: str | None = None, token: str | None = TEST_TOKEN
) -> tuple[int, str, str]:
    """Run `python -m daemon ARGS` with FACEGATE_URL / FACEGATE_TOKEN set (or not); (rc, out, err)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    if url is not None:
        env["FACEGATE_URL"] = url
    if token is not None:
        env["FACEGATE_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "daemon",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode, out.decode(), err.decode()


async def total_faces(client) -> int:
    body = await (await client.get("/api/faces", headers=AUTH)).json()
    return body["data"]["totalFaces"]


async def test_enroll_then_search(daemon):
    client, url = daemon
    response = await client.post(
        "/api/faceGroups", json={"groupId": "staff", "groupName": "Staff"}, headers=AUTH
    )
    assert (await response.json())["code"] == 0

    rc, out, err = await facegate(
        "enroll",
        str(FACES / "obama.jpg"),
        "--name",
        "Barack",
        "--description",
        "test",
        "--group",
        "staff",
        url=url,
    )
    assert rc == 0, err
    assert out.startswith("enrolled obama.jpg: faceToken ")
    token = out.split("faceToken ", 1)[1].split()[0]
    assert "groups: default, staff" in out

    detail = await (await client.get(f"/api/faces/faceToken/{token}", headers=AUTH)).json()
    assert detail["data"]["name"] == "Barack" and detail["data"]["description"] == "test"
    assert {g["groupId"] for g in detail["data"]["faceGroupList"]} == {"default", "staff"}

    rc, out, err = await facegate("search", str(FACES / "obama2.jpg"), "--group", "staff", url=url)
    assert rc == 0, err
    assert "top1: score " in out and f"faceToken {token}" in out and "groups default,staff" in out

    rc, out, err = await facegate("search", str(FACES / "biden.jpg"), "--top", "3", url=url)
    assert rc == 0, err
    assert "no match in default" in out and "top1" not in out

    rc, out, err = await facegate("search", str(FACES / "obama2.jpg"), "--json", url=url)
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["code"] == 0 and answer["data"]["top1"]["faceToken"] == token
    assert answer["data"]["top1"]["searchScore"] >= 80


async def test_a_wrong_token_is_a_clear_error(daemon):
    client, url = daemon
    rc, out, err = await facegate("enroll", str(FACES / "obama.jpg"), url=url, token="wrong-token-0123456789")
    assert rc == 1 and out == ""
    assert "POST /api/faces failed: 104902 FORBIDDEN" in err and "(HTTP 403)" in err
    assert "check --token" in err
    assert await total_faces(client) == 0


async def test_errors_exit_1_with_the_device_code(daemon, tmp_path):
    client, url = daemon
    rc, _, err = await facegate("enroll", str(NO_FACES / "chelsea.png"), url=url)
    assert rc == 1 and "104200 FACE_NOT_FOUND" in err

    # An unknown group is refused before anything is enrolled.
    rc, _, err = await facegate("enroll", str(FACES / "obama.jpg"), "--group", "nope", url=url)
    assert rc == 1 and "no such group: nope" in err
    assert await total_faces(client) == 0

    rc, _, err = await facegate("search", str(tmp_path / "missing.jpg"), url=url)
    assert rc == 1 and "cannot read" in err and "missing.jpg" in err

    rc, _, err = await facegate("search", str(FACES / "obama.jpg"), "--group", "nope", url=url)
    assert rc == 1 and "104311 GROUP_ID_NOT_EXIST" in err


async def test_token_file_flags_and_an_unreachable_daemon(daemon, tmp_path):
    _, url = daemon
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# tokens\nadmin:{TEST_TOKEN}\n")
    rc, out, err = await facegate(
        "search", str(FACES / "obama.jpg"), "--url", url, "--token-file", str(token_file), token=None
    )
    assert rc == 0, err
    assert "no match" in out  # an empty library

    rc, _, err = await facegate("search", str(FACES / "obama.jpg"), url=url, token=None)
    assert rc == 1 and "no API token" in err

    rc, _, err = await facegate(
        "search", str(FACES / "obama.jpg"), "--url", "http://127.0.0.1:9", "--timeout", "5"
    )
    assert rc == 1 and "cannot reach http://127.0.0.1:9" in err


async def test_enroll_several_photos_of_one_person(daemon):
    # Several photos: one face each, same name; a refused photo is reported and does not stop the others.
    client, url = daemon
    photos = [str(FACES / "obama.jpg"), str(NO_FACES / "chelsea.png"), str(FACES / "obama3.jpg")]
    rc, out, err = await facegate("enroll", *photos, "--name", "Barack", url=url)
    assert rc == 1
    assert "enrolled obama.jpg: faceToken " in out and "enrolled obama3.jpg: faceToken " in out
    assert "not enrolled chelsea.png: " in out and "104200 FACE_NOT_FOUND" in out
    assert "1 of 3 images were not enrolled" in err
    body = await (await client.get("/api/faces?pageSize=10", headers=AUTH)).json()
    assert body["data"]["totalFaces"] == 2
    assert {f["name"] for f in body["data"]["face"]} == {"Barack"}

    rc, out, err = await facegate(
        "enroll", str(FACES / "obama2.jpg"), str(FACES / "32bit.png"), "--name", "B", "--json", url=url
    )
    assert rc == 0, err
    answers = json.loads(out)
    assert [a["register"]["code"] for a in answers] == [0, 0]
