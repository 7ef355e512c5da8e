"""Start-up integrity (issue #11): a deleted library silently started empty, a corrupt one exited with a
raw traceback, a corrupt tasks.sqlite3 stopped the daemon. Real `facegate run` processes, real files.

Now: a missing library that existed and a corrupt library each stop the start with exit status 5
(EXIT_INTEGRITY) and one named line (no traceback); a corrupt task database is moved aside and the
daemon serves.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_support import daemon_env

from daemon.ops.exits import EXIT_INTEGRITY

REPO = Path(__file__).resolve().parent.parent


def run_daemon(state: Path, until_ready: bool = True, timeout: float = 90) -> tuple[int | None, str]:
    """Start `facegate run`; stop it with SIGTERM once ready. (exit status, stderr)."""
    env = daemon_env()
    log = state.parent / f"daemon-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--port", "0", "--state-dir", str(state)],
            cwd=REPO,
            env=env,
            stderr=out,
            stdout=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if until_ready and "ready: models loaded" in log.read_text():
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.2)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, log.read_text()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    """A state dir whose daemon has run once: the library exists and is marked."""
    state = tmp_path_factory.mktemp("integrity") / "state"
    code, text = run_daemon(state)
    assert code == 0, text
    assert (state / "library.sqlite3").exists() and (state / "library.exists").exists()
    return state


def copy_state(source: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "state"
    shutil.copytree(source, target)
    return target


def test_a_missing_library_that_existed_is_exit_5(first_run, tmp_path) -> None:
    state = copy_state(first_run, tmp_path)
    for name in ("library.sqlite3", "library.sqlite3-wal", "library.sqlite3-shm"):
        (state / name).unlink(missing_ok=True)
    code, text = run_daemon(state, until_ready=False)
    assert code == EXIT_INTEGRITY, text
    assert "missing" in text and "library.exists" in text and "Traceback" not in text
    assert not (state / "library.sqlite3").exists()  # not silently recreated empty
    (state / "library.exists").unlink()  # the documented way to start empty on purpose
    code, text = run_daemon(state)
    assert code == 0, text


@pytest.mark.parametrize("damage", ["garbage", "flipped-pages"])
def test_a_corrupt_library_is_exit_5_with_a_named_line(first_run, tmp_path, damage) -> None:
    state = copy_state(first_run, tmp_path)
    path = state / "library.sqlite3"
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"this is not a database " * 400)
    else:  # keep the header, break the b-tree pages
        for i in range(200, len(data), 97):
            data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    for name in ("library.sqlite3-wal", "library.sqlite3-shm"):
        (state / name).unlink(missing_ok=True)
    code, text = run_daemon(state, until_ready=False)
    assert code == EXIT_INTEGRITY, text
    assert "corrupt" in text or "cannot be opened" in text
    assert "Traceback" not in text and str(path) in text


def test_a_corrupt_task_database_is_moved_aside_and_the_daemon_serves(first_run, tmp_path) -> None:
    state = copy_state(first_run, tmp_path)
    tasks = state / "tasks" / "tasks.sqlite3"
    assert tasks.exists()
    tasks.write_bytes(b"\x00garbage, not SQLite" * 300)
    for name in ("tasks.sqlite3-wal", "tasks.sqlite3-shm"):
        (tasks.parent / name).unlink(missing_ok=True)
    code, text = run_daemon(state)
    assert code == 0, text
    assert "task database" in text and "corrupt" in text and "Traceback" not in text
    assert list(tasks.parent.glob("tasks.sqlite3.corrupt-*"))
