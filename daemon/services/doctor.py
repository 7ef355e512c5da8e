"""End-to-end health checks of a device, as structured results (``facegate doctor``, later a web page).

Each check returns a :class:`Check`: ``ok``, ``warn`` (works, but look at it), ``fail`` (the device is
not fit to serve; ``fix`` says what to do) or ``skip`` (not applicable here, e.g. no camera configured,
no systemd). ``run_checks`` runs them all; a device is healthy when none failed. Checks never raise:
an unexpected error is a failed check with its message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from daemon.config import Config
from daemon.errors import FacegateError
from daemon.services.disk import MIB, free_bytes
from daemon.vision.engine import ModelPaths
from daemon.vision.models import MODEL_FILES, file_sha256

Status = Literal["ok", "warn", "fail", "skip"]
UNIT_PATHS = (Path("/etc/systemd/system/facegate.service"), Path("/usr/lib/systemd/system/facegate.service"))
# The device classes (names in /proc/devices) libcamera, V4L2 and the DMA heaps use: /dev/video* and
# /dev/v4l-subdev* are video4linux, /dev/media* is media, /dev/dma_heap/* is dma_heap.
CAMERA_DEVICE_CLASSES = ("video4linux", "media", "dma_heap")
# Directories of device nodes (on a Pi); a DeviceAllow= naming one is silently ignored by systemd.
DEVICE_DIRS = frozenset({"/dev/dma_heap", "/dev/v4l", "/dev/dri", "/dev/snd"})
SANE_EPOCH = 1735689600  # 2025-01-01: a Pi without RTC or network boots with an older clock
CAMERA_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def healthy(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


def run_checks(
    config: Config | None,
    config_error: str | None = None,
    *,
    unit_paths: tuple[Path, ...] = UNIT_PATHS,
    camera: bool = True,
) -> list[Check]:
    """Every check; with an invalid config (``config_error``) the others use the defaults."""
    if config is None:
        config = Config()
    checks = [
        Check(
            "config", "fail", config_error, "fix the named key (facegate run --validate-config --config FILE)"
        )
        if config_error
        else Check("config", "ok", "configuration is valid")
    ]
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("models", lambda: check_models(config)),
        ("state_dir", lambda: check_state(config)),
        ("disk", lambda: [check_disk(config)]),
        ("tflite", lambda: [check_tflite(config)]),
        ("camera_libraries", lambda: check_camera_libraries(config)),
        ("camera", lambda: [check_camera(config)] if camera else []),
        ("clock", lambda: [check_clock()]),
        ("unit", lambda: [check_unit(unit_paths)]),
    ]
    for name, step in steps:
        try:
            checks.extend(step())
        except Exception as exc:  # boundary: a broken check is reported, never a traceback
            fix = "the check itself failed: report it with the output of facegate doctor --json"
            checks.append(Check(name, "fail", f"{type(exc).__name__}: {exc}", fix))
    return checks


def check_models(config: Config) -> list[Check]:
    out = []
    models_dir = config.models_path
    # What `facegate run` refuses to start without, and the blink models when the door's policy uses them.
    wanted = ModelPaths.required_keys(config.models.embedding, config.liveness.enabled)
    if config.checkin.liveness == "passive+blink":
        wanted += ["face_mesh", "iris"]
    fix = (
        "reinstall Facegate (sudo scripts/install-pi, or pip install --force-reinstall) or point "
        "models.dir at an intact copy of models/"
    )
    for key in wanted:
        model = MODEL_FILES[key]
        path = models_dir / model.filename
        if not path.is_file():
            out.append(Check(f"model:{key}", "fail", f"missing: {path}", fix))
            continue
        actual = file_sha256(path)
        if actual != model.sha256:
            detail = f"{path} has sha256 {actual}, expected {model.sha256} (corrupt or replaced)"
            out.append(Check(f"model:{key}", "fail", detail, fix))
        else:
            out.append(Check(f"model:{key}", "ok", f"{path} sha256 ok"))
    return out


def check_state(config: Config) -> list[Check]:
    """The state dir and its secret files: ours, and closed to other users."""
    state = config.state_path
    if not state.exists():
        return [Check("state_dir", "warn", f"{state} does not exist yet (created at first start)")]
    if not state.is_dir():
        return [
            Check("state_dir", "fail", f"{state} is not a directory", "remove it or set server.state_dir")
        ]
    out = []
    info = state.stat()
    problems = []
    if info.st_mode & 0o007:
        problems.append(f"mode {stat.S_IMODE(info.st_mode):04o} lets other users in")
    if info.st_uid != os.geteuid():
        problems.append(f"owned by uid {info.st_uid}, not {os.geteuid()}")
    if not os.access(state, os.W_OK | os.X_OK):
        problems.append("not writable by this user")
    if problems:
        fix = f"chmod 0750 {state}; chown <service user> {state} (systemd's StateDirectory= does both)"
        out.append(Check("state_dir", "fail", f"{state}: " + "; ".join(problems), fix))
    else:
        out.append(Check("state_dir", "ok", f"{state} mode {stat.S_IMODE(info.st_mode):04o}"))
    # Token files (whatever their format: tokens, tokens.json …) and keys in the state dir, and the
    # bundle key wherever it is configured.
    keys = [*state.glob("*.key"), *state.glob("*.keys")]
    secrets = sorted({config.bundle_key_path, *state.glob("tokens*"), *keys})
    databases = [config.database_path, config.database_path.with_name(config.database_path.name + "-wal")]
    for path, allowed in [(p, 0o077) for p in secrets] + [(p, 0o007) for p in databases]:
        if not path.is_file():
            continue
        info = path.stat()
        if info.st_mode & allowed:
            mode = stat.S_IMODE(info.st_mode)
            want = 0o600 if allowed == 0o077 else 0o640
            out.append(
                Check(f"file:{path.name}", "fail", f"{path} has mode {mode:04o}", f"chmod {want:04o} {path}")
            )
        elif info.st_uid != os.geteuid():
            out.append(
                Check(
                    f"file:{path.name}",
                    "fail",
                    f"{path} is owned by uid {info.st_uid}",
                    "chown it to the service user",
                )
            )
        else:
            out.append(Check(f"file:{path.name}", "ok", f"{path} mode {stat.S_IMODE(info.st_mode):04o}"))
    return out


def check_disk(config: Config) -> Check:
    free = free_bytes(config.state_path)
    floor = config.ops.min_free_mb * MIB
    detail = f"{free / MIB:.0f} MiB free for {config.state_path} (floor {config.ops.min_free_mb} MiB)"
    if floor and free < floor:
        return Check(
            "disk", "fail", detail, "free space: delete old task results/recordings, or a bigger card"
        )
    if floor and free < 2 * floor:
        return Check("disk", "warn", detail, "free space soon: writes are refused under the floor")
    return Check("disk", "ok", detail)


def check_tflite(config: Config) -> Check:
    """The TFLite runtime loads a model and runs it (the CPU delegate, XNNPACK in ai-edge-litert)."""
    from daemon.vision.runtime import load_interpreter, runtime_name

    path = config.models_path / MODEL_FILES["detector_short"].filename
    try:
        interpreter = load_interpreter(path, config.models.num_threads)
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
    except (FacegateError, ValueError, RuntimeError) as exc:
        return Check(
            "tflite", "fail", str(exc), "pip install -c constraints.txt ai-edge-litert (aarch64 wheel)"
        )
    return Check("tflite", "ok", f"{runtime_name()} runs {path.name} on the CPU")


def check_camera_libraries(config: Config) -> list[Check]:
    """picamera2 importable (a broken install says why), and OpenCV built with V4L2."""
    import cv2

    from daemon.camera.picamera2_source import INSTALL_HINT, broken_hint

    wants_picamera2 = config.camera.source.startswith("picamera2")
    try:
        import picamera2  # noqa: F401  (only whether it imports)
    except ImportError:
        status: Status = "fail" if wants_picamera2 else "skip"
        pic = Check("picamera2", status, "not installed", INSTALL_HINT if wants_picamera2 else "")
    except Exception as exc:  # boundary: installed but broken (numpy ABI clash …)
        status = "fail" if wants_picamera2 else "warn"
        pic = Check(
            "picamera2", status, broken_hint(exc), "re-run sudo scripts/install-pi (docs/OPERATIONS.md)"
        )
    else:
        pic = Check("picamera2", "ok", "imports")
    if cv2.videoio_registry.hasBackend(cv2.CAP_V4L2):
        v4l2 = Check("v4l2", "ok", "OpenCV has its V4L2 backend")
    else:
        wants_v4l2 = config.camera.source.startswith(("/dev/", "v4l2:")) or config.camera.source.isdigit()
        fix = "pip install -c constraints.txt opencv-python-headless (its wheels include V4L2)"
        v4l2 = Check("v4l2", "fail" if wants_v4l2 else "skip", "OpenCV was built without V4L2", fix)
    return [pic, v4l2]


def check_camera(config: Config) -> Check:
    """The configured camera opens and delivers one frame (within CAMERA_TIMEOUT)."""
    spec = config.camera.source
    if not spec:
        return Check("camera", "skip", "not configured (camera.source is empty)")
    from daemon.camera.registry import source_from_config

    c = config.camera
    source = source_from_config(spec, c.width, c.height, c.fps, loop=False, paced=False)
    outcome: dict[str, Any] = {}

    def grab() -> None:
        try:
            source.open()
            frame = source.read()
            outcome["frame"] = None if frame is None else frame.size
        except Exception as exc:  # boundary: whatever the backend raises is the answer
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):  # boundary: best effort
                source.close()

    thread = threading.Thread(target=grab, name="doctor-camera", daemon=True)
    thread.start()
    thread.join(CAMERA_TIMEOUT)
    fix = (
        "check the cable/device (rpicam-hello --list-cameras, v4l2-ctl --list-devices); stop the "
        "daemon first if it holds the camera; see docs/OPERATIONS.md, Cameras"
    )
    if thread.is_alive():
        return Check("camera", "fail", f"{source.describe()}: no frame within {CAMERA_TIMEOUT:.0f} s", fix)
    if "error" in outcome:
        return Check("camera", "fail", f"{source.describe()}: {outcome['error']}", fix)
    if outcome.get("frame") is None:
        return Check("camera", "fail", f"{source.describe()}: delivered no frame", fix)
    width, height = outcome["frame"]
    return Check("camera", "ok", f"{source.describe()} delivered a {width}x{height} frame")


def check_clock(now: float | None = None) -> Check:
    now = time.time() if now is None else now
    if now < SANE_EPOCH:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(now))
        return Check(
            "clock",
            "fail",
            f"system clock says {stamp} UTC",
            "enable time sync (timedatectl set-ntp true) or fit an RTC; tokens/TLS/logs need the time",
        )
    synced = Path("/run/systemd/timesync/synchronized")
    if shutil.which("timedatectl") and not synced.exists():
        return Check("clock", "warn", "clock looks sane but is not confirmed synchronised (no NTP sync flag)")
    return Check("clock", "ok", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now)))


def check_unit(unit_paths: tuple[Path, ...] = UNIT_PATHS) -> Check:
    """The installed unit's DeviceAllow= names the device classes the camera stack needs."""
    unit = next((p for p in unit_paths if p.is_file()), None)
    if unit is None:
        if shutil.which("systemctl") is None:
            return Check("unit", "skip", "no systemd on this host")
        return Check("unit", "skip", "facegate.service is not installed (scripts/install-pi installs it)")
    problems = unit_device_problems(unit.read_text(encoding="utf-8"))
    if problems:
        return Check("unit", "fail", f"{unit}: " + "; ".join(problems), "re-run sudo scripts/install-pi")
    return Check("unit", "ok", f"{unit} allows {', '.join('char-' + c for c in CAMERA_DEVICE_CLASSES)}")


def unit_device_problems(text: str) -> list[str]:
    """What is wrong with a unit's DeviceAllow= lines for the camera stack (empty: nothing)."""
    allowed = device_allow_entries(text)
    problems = []
    for entry in allowed:
        if entry.startswith("/") and (Path(entry).is_dir() or entry.rstrip("/") in DEVICE_DIRS):
            problems.append(f"DeviceAllow={entry} is a directory, which systemd ignores")
    names = {e.removeprefix("char-") for e in allowed if e.startswith("char-")}
    for cls in CAMERA_DEVICE_CLASSES:
        if cls not in names:
            problems.append(f"no DeviceAllow=char-{cls}")
    return problems


def device_allow_entries(text: str) -> list[str]:
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("DeviceAllow="):
            value = line.partition("=")[2].split()
            if value:
                entries.append(value[0])
    return entries
