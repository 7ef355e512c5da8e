"""Start a real `python -m daemon run` for a script, and stop it: the one helper the scripts share.

    from scripts.daemon_process import start_daemon
    daemon = start_daemon(state_dir, {"FACEGATE_PRIVACY_CACHE_ENTRIES": "0"})
    try:
        ...  daemon.url, daemon.token (an admin token), daemon.memory(), daemon.cpu_seconds()
    finally:
        daemon.stop()

The daemon listens on 127.0.0.1 on a free port, with the embedded defaults; its environment is this
process's without any FACEGATE_* variable (a benchmark measures the defaults, not the caller's shell),
plus the per-client request limit lifted (measure the daemon, not the limiter), plus ``env``. The token
is the admin token the daemon writes to <state>/admin-token on a first start on loopback (a state dir
that already has a token store must still have that file). Ready means /health answered 200 (models
loaded); its stdout and stderr go to <state>/daemon.log, shown when it fails to start.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_ENV = {
    "FACEGATE_AUTH_EXPENSIVE_PER_MINUTE": "1000000",
    "FACEGATE_AUTH_EXPENSIVE_BURST": "100000",
}


@dataclass
class Daemon:
    proc: subprocess.Popen
    url: str
    token: str
    log: Path

    def memory(self) -> dict[str, float]:
        """VmRSS / VmHWM in MiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {
            k: int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1)) / 1024 for k in ("VmRSS", "VmHWM")
        }

    def cpu_seconds(self) -> float:
        """User + system CPU time of the daemon so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM (in-flight requests finish), then SIGKILL after 30 s."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(state: Path, env: dict[str, str] | None = None, timeout: float = 120.0) -> Daemon:
    """A ready daemon on ``state`` (created 0700 if missing); SystemExit with its log if it does not start."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = state / "daemon.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    full_env.update(BENCH_ENV)
    full_env.update(env or {})
    cmd = [sys.executable, "-m", "daemon", "run", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--state-dir", str(state)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or 503 while the models load
        time.sleep(0.2)
    else:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output = log.read_text(errors="replace")
        raise SystemExit(f"the daemon did not start (exit {proc.returncode}); its log:\n{output}")
    daemon = Daemon(proc, url, "", log)
    try:
        daemon.token = (state / "admin-token").read_text().strip()
    except FileNotFoundError:
        daemon.stop()
        raise SystemExit(
            f"{state / 'admin-token'} is missing: start the daemon on a fresh state dir"
        ) from None
    return daemon
