"""The daemon as started by hand (no systemd, umask 0022): every file it writes is private, and no
client-supplied path or file name can forge a log line.

A real `facegate run` process on 127.0.0.1; a face is enrolled, a video task runs to its result, an
audit record is written; then the whole state dir is walked.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from clip_maker import make_clip
from conftest import FACES
from daemon_support import daemon_env

REPO = Path(__file__).resolve().parent.parent


def _request(port: int, token: str, method: str, path: str, body: bytes | None = None, ctype: str = ""):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if ctype:
        request.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _multipart(video: bytes, filename_star: str) -> tuple[bytes, str]:
    boundary = "facegate-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="video"; '
        f"filename*=UTF-8''{filename_star}\r\n"
        "Content-Type: video/x-msvideo\r\n\r\n"
    ).encode()
    return head + video + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_outside_systemd_state_is_private_and_logs_cannot_be_forged(tmp_path: Path):
    state = tmp_path / "state"
    clip = make_clip(tmp_path / "clip.avi", size=(320, 180), frames=6)
    env = daemon_env(FACEGATE_TASKS_OUTPUT="avi")
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--port", "0", "--state-dir", str(state)],
            cwd=REPO,
            env=env,
            stderr=log_file,
            stdout=subprocess.DEVNULL,
            preexec_fn=lambda: os.umask(0o022),  # a shell's usual umask
        )
    try:
        port = _wait_ready(proc, log_path)
        token = (state / "admin-token").read_text().strip()  # the first start's admin token
        image = base64.b64encode((FACES / "obama.jpg").read_bytes()).decode()
        status, body = _request(
            port, token, "POST", "/api/faces", json.dumps({"image": image}).encode(), "application/json"
        )
        assert status == 200 and body["code"] == 0, body
        forged_name = "evil%0D%0A2026-01-01%2000%3A00%3A00%20INFO%20facegate%3A%20FORGED-BY-NAME.avi"
        data, ctype = _multipart(clip.path.read_bytes(), forged_name)
        status, body = _request(port, token, "POST", "/api/v1/tasks/blur-video", data, ctype)
        assert status == 202, body
        task = body["task_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, body = _request(port, token, "GET", f"/api/v1/tasks/{task}")
            if body.get("status") in ("done", "failed"):
                break
            time.sleep(0.3)
        assert body.get("status") == "done", body
        forged_path = "/api/faces/x%0A2026-01-01%2000:00:00%20INFO%20facegate.audit:%20FORGED-BY-PATH"
        status, _ = _request(port, token, "DELETE", forged_path)
        assert status == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    # Every directory 0700 and every file 0600, the library's -wal/-shm and the task result included.
    seen = []
    for path in [state, *state.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} has mode {mode:04o}"
        seen.append(str(path.relative_to(state)))
    expected_files = ("library.sqlite3", "library.keys", "tokens.json", "audit.sqlite3", "events.sqlite3")
    for expected in (*expected_files, "tasks/tasks.sqlite3"):
        assert expected in seen, seen
    assert any(name.startswith("tasks/results/") for name in seen), seen
    log_text = log_path.read_text()
    lines = log_text.splitlines()
    assert not [line for line in lines if "FORGED" in line and not line.startswith(("20", " "))]
    assert "FORGED-BY-NAME" not in log_text and "evil" not in log_text  # file names are never logged
    request_line = next(line for line in lines if "FORGED-BY-PATH" in line)
    assert "/api/faces/x%0A2026-01-01" in request_line and "principal=admin" in request_line


def _wait_ready(proc: subprocess.Popen, log_path: Path) -> int:
    deadline = time.monotonic() + 90
    port = None
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if port is None and "listening on http://127.0.0.1:" in text:
            port = int(text.split("listening on http://127.0.0.1:")[1].split()[0].rstrip("/"))
        if port is not None and "ready: models loaded" in text:
            return port
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"the daemon did not get ready:\n{log_path.read_text()}")
