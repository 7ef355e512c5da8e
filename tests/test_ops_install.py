"""Installed = working: the wheel carries the models, and `facegate run` from an unrelated directory serves.

Affordable in CI: `pip wheel --no-deps` builds only Facegate (its build requirements come from the same
index scripts/test already used for the editable install), the fresh venv gets the wheel with
`--no-deps --no-index`, and reaches the dependencies already installed in the test venv through a
.pth file (so nothing is downloaded or installed twice). A .pth in a non-site directory is not
executed, so the test venv's editable install of the checkout stays out of the fresh venv's way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO

from daemon.vision.models import MODEL_FILES


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACEGATE_", "NOTIFY_", "PYTHON"))}
    env.update({"FACEGATE_LOGGING_JOURNALD": "never", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from this checkout; returns its bin/ directory."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if build.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{build.stderr[-3000:]}")
    (wheel,) = wheels.glob("facegate-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    )
    (site / "zz_test_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    return venv / "bin"


def test_the_wheel_holds_the_models_and_the_installed_daemon_serves(installed, tmp_path):
    elsewhere = tmp_path / "unrelated"
    elsewhere.mkdir()
    where = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import daemon, daemon.config as c; print(daemon.__file__); print(c.PACKAGE_MODELS_DIR)",
        ],
        cwd=elsewhere,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    venv_root = str(installed.parent)
    assert where[0].startswith(venv_root) and where[1].startswith(venv_root), where
    models = Path(where[1])
    assert {m.filename for m in MODEL_FILES.values()} <= {p.name for p in models.iterdir()}

    proc = subprocess.Popen(
        [str(installed / "facegate"), "run", "--port", "0", "--state-dir", str(tmp_path / "state")],
        cwd=elsewhere,
        env=_clean_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = None
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline and port is None:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, "".join(lines)
        status, body = 0, {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    status, body = response.status, json.loads(response.read())
                    break
            except urllib.error.HTTPError as exc:  # 503 while the models load
                assert exc.code == 503
            time.sleep(0.2)
        assert status == 200 and body["status"] == "ok", body
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0

    broken = models / "face_detection_short_range.tflite"
    shutil.copyfile(broken, tmp_path / "saved.tflite")
    with broken.open("r+b") as f:
        f.seek(2000)
        f.write(b"\x00\x00\x00")
    check = subprocess.run(
        [str(installed / "facegate"), "run", "--validate-config"],
        cwd=elsewhere,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 3, check.stderr
    assert "face_detection_short_range.tflite has sha256" in check.stderr
