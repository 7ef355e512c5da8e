"""Schemathesis over the daemon's own /openapi.json against a real daemon process on 127.0.0.1.

Bounded: FACEGATE_FUZZ_EXAMPLES cases per operation (default 60; ~2 min on 2 cores) in schemathesis's
examples, coverage (boundary values, wrong types, missing fields) and fuzzing phases, with a fixed seed
(FACEGATE_FUZZ_SEED, default 1) so CI is reproducible; a different seed explores further. The run must
find no 5xx and no answer that contradicts the document (status code, content type, headers, body
schema). The daemon has a camera (a looping clip at 5 fps) so the stream routes answer for real;
/api/stream.mjpg and /api/events/stream are left out because their answers never end
(tests/test_api_stream.py and the door's tests cover them).

Checks not run, and why: positive_data_acceptance (schema-valid random base64 is still no image: 400 is
right), negative_data_rejection (the device API ignores unknown fields and reads limits in bytes, as the
original document says), use_after_free / ensure_resource_availability (no links between operations).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from clip_maker import make_clip
from daemon_support import daemon_env

REPO = Path(__file__).resolve().parent.parent
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
EXAMPLES = int(os.environ.get("FACEGATE_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("FACEGATE_FUZZ_SEED", "1")
RUN_TIMEOUT = 480  # seconds: far above a normal run (~2 min on 2 cores)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@pytest.fixture
def daemon(tmp_path: Path):
    """A real `facegate run` process with an admin token and a file camera; yields (URL, log, token)."""
    clip = make_clip(tmp_path / "clip.avi", size=(320, 240), frames=20)
    state = tmp_path / "state"
    port = free_port()
    env = daemon_env()
    env |= {
        "FACEGATE_CAMERA_SOURCE": f"file:{clip.path}",
        "FACEGATE_CAMERA_FPS": "5",
        # The fuzzer is one client sending thousands of expensive requests: it must reach the handlers.
        "FACEGATE_AUTH_EXPENSIVE_PER_MINUTE": "1000000",
        "FACEGATE_AUTH_EXPENSIVE_BURST": "1000000",
    }
    # An admin token, so the admin routes (reset, export/import, door settings, config) are reached too.
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon",
            "token",
            "--state-dir",
            str(state),
            "add",
            "fuzz",
            "--scope",
            "admin",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip().splitlines()[-1]
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--port", str(port), "--state-dir", str(state)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while get_status(f"{base}/health") != 200:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "the daemon did not become ready"
            time.sleep(0.3)
        yield base, log_path, token
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(daemon, tmp_path: Path) -> None:
    base, log_path, token = daemon
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--exclude-path",
        "/api/stream.mjpg",
        "--exclude-path",
        "/api/events/stream",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    started = time.monotonic()
    run = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    summary = re.search(r"Test cases:\s*\n\s*(.+)", output)
    print(f"schemathesis: {summary.group(1) if summary else '?'} in {elapsed:.0f} s (seed {SEED})")
    tracebacks = [line for line in log_path.read_text().splitlines() if "unexpected error" in line]
    failures = output[output.find("FAILURES") : output.find("WARNINGS")] if "FAILURES" in output else output
    assert run.returncode == 0, (
        f"schemathesis failed (exit {run.returncode}); daemon 500s: {tracebacks}\n{failures[:20000]}"
    )
    assert not tracebacks, tracebacks
    assert re.search(r"\b(\d+) generated\b", output), output[-2000:]
