"""Starting a real `facegate run` process in tests: one clean environment, one line-reading wrapper."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def daemon_env(**extra: str) -> dict[str, str]:
    """This process's environment without FACEGATE_/NOTIFY_/WATCHDOG_ variables (the test decides the
    daemon's settings, and no systemd socket leaks in), logging to stderr unbuffered, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEGATE_", "NOTIFY_", "WATCHDOG_"))}
    env.update({"FACEGATE_LOGGING_JOURNALD": "never", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


class Daemon:
    def __init__(self, tmp_path: Path, env_extra: dict[str, str], args: list[str] = ()) -> None:
        env = daemon_env(**env_extra)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daemon",
                "run",
                "--port",
                "0",
                "--state-dir",
                str(tmp_path / "state"),
                *args,
            ],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"{pattern!r} not seen; log:\n{''.join(self.log)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
