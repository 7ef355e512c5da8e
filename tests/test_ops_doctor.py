"""`facegate doctor --json` as a person runs it: a real process, real models, a real state dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from daemon.config import PACKAGE_MODELS_DIR


def doctor(state: Path, **env: str) -> tuple[int, dict]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    environ.update(env)
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "doctor", "--json", "--state-dir", str(state)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(run.stdout)
    assert report["healthy"] == (run.returncode == 0), run.stdout
    return run.returncode, {c["name"]: c for c in report["checks"]}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir(mode=0o750)
    path.chmod(0o750)
    (path / "tokens").write_text("admin:" + "x" * 32 + "\n")
    (path / "tokens").chmod(0o600)
    return path


def test_a_healthy_device_passes_and_an_absent_camera_is_not_configured(state):
    code, checks = doctor(state)
    assert code == 0, checks
    assert checks["camera"]["status"] == "skip" and "not configured" in checks["camera"]["detail"]
    for name in ("config", "model:detector_short", "model:detector_full", "model:embedding_int8", "tflite"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["state_dir"]["status"] == "ok" and checks["file:tokens"]["status"] == "ok"
    assert checks["disk"]["status"] in ("ok", "warn")


def test_a_wrong_model_hash_fails_and_names_the_file(state, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(PACKAGE_MODELS_DIR, models)
    with (models / "face_detection_full_range.tflite").open("r+b") as f:
        f.seek(4096)
        f.write(b"\xff\xfe")
    code, checks = doctor(state, FACEGATE_MODELS_DIR=str(models))
    assert code == 1
    check = checks["model:detector_full"]
    assert check["status"] == "fail" and "face_detection_full_range.tflite has sha256" in check["detail"]
    assert "reinstall" in check["fix"]
    assert checks["model:detector_short"]["status"] == "ok"


def test_doctor_checks_every_model_the_daemon_needs_to_start(state, tmp_path):
    """A missing liveness model or YuNet stops `facegate run` (exit 3): doctor must not call it healthy."""
    models = tmp_path / "models"
    shutil.copytree(PACKAGE_MODELS_DIR, models)
    (models / "liveness_minifasnet_v1se.tflite").unlink()
    (models / "face_detection_yunet.onnx").unlink()
    code, checks = doctor(state, FACEGATE_MODELS_DIR=str(models))
    assert code == 1
    for name in ("model:liveness_v1se", "model:detector_yunet"):
        assert checks[name]["status"] == "fail" and "missing" in checks[name]["detail"], checks[name]
    assert checks["model:liveness_v2"]["status"] == "ok"
    assert "model:face_mesh" not in checks  # only when the door's policy is passive+blink
    # Liveness deliberately off: the daemon starts without those models, and doctor agrees.
    code, checks = doctor(state, FACEGATE_MODELS_DIR=str(models), FACEGATE_LIVENESS_ENABLED="false")
    assert "model:liveness_v1se" not in checks and checks["model:detector_yunet"]["status"] == "fail"
    code, checks = doctor(state, FACEGATE_CHECKIN_LIVENESS="passive+blink")
    assert code == 0, checks
    assert checks["model:face_mesh"]["status"] == "ok" and checks["model:iris"]["status"] == "ok"


def test_a_world_readable_state_dir_and_token_file_fail_with_the_fix(state):
    state.chmod(0o755)
    (state / "tokens").chmod(0o644)
    code, checks = doctor(state)
    assert code == 1
    assert checks["state_dir"]["status"] == "fail" and "lets other users in" in checks["state_dir"]["detail"]
    assert checks["state_dir"]["fix"].startswith(f"chmod 0750 {state}")
    assert (
        checks["file:tokens"]["status"] == "fail"
        and checks["file:tokens"]["fix"] == f"chmod 0600 {state / 'tokens'}"
    )


def test_an_invalid_config_fails_the_config_check(state, tmp_path):
    code, checks = doctor(state, FACEGATE_WORKERS_COUNT="0")
    assert (
        code == 1 and checks["config"]["status"] == "fail" and "workers.count" in checks["config"]["detail"]
    )


def test_a_camera_that_cannot_deliver_is_a_failure_with_the_reason(state, tmp_path):
    code, checks = doctor(state, FACEGATE_CAMERA_SOURCE=str(tmp_path / "nothing.mp4"))
    assert code == 1 and checks["camera"]["status"] == "fail"
    assert "nothing.mp4" in checks["camera"]["detail"] and checks["camera"]["fix"]


def test_validate_config_checks_the_models(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(PACKAGE_MODELS_DIR, models)
    (models / "face_embedding_int8.tflite").write_bytes(b"not a model")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--validate-config"],
        env={**environ, "FACEGATE_MODELS_DIR": str(models)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 3, run.stderr
    assert "face_embedding_int8.tflite has sha256" in run.stderr


def test_a_broken_picamera2_is_named_with_its_reason(state, tmp_path):
    # picamera2 importable but failing the way apt's simplejpeg does under numpy 2 (a fake package
    # standing in for the absent Pi software; the failure is what picamera2 issues #1088/#1211 show).
    package = tmp_path / "fake" / "picamera2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise ValueError('numpy.dtype size changed, may indicate binary incompatibility')\n"
    )
    code, checks = doctor(state, PYTHONPATH=str(tmp_path / "fake"))
    assert code == 0 and checks["picamera2"]["status"] == "warn"  # no camera configured: a warning
    assert (
        "dtype size changed" in checks["picamera2"]["detail"]
        and "simplejpeg" in checks["picamera2"]["detail"]
    )
    code, checks = doctor(state, PYTHONPATH=str(tmp_path / "fake"), FACEGATE_CAMERA_SOURCE="picamera2")
    assert code == 1 and checks["picamera2"]["status"] == "fail"
    assert checks["camera"]["status"] == "fail" and "dtype size changed" in checks["camera"]["detail"]
