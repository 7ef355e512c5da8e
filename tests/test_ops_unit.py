"""The unit's device access and restart policy: what libcamera/V4L2 use, what the daemon exits with."""

from __future__ import annotations

from conftest import REPO

from daemon.ops.exits import NO_RESTART
from daemon.services.doctor import CAMERA_DEVICE_CLASSES, device_allow_entries, unit_device_problems

UNIT = REPO / "systemd" / "facegate.service"


def test_device_allow_names_device_classes_not_directories():
    entries = device_allow_entries(UNIT.read_text())
    # systemd accepts a device node path or a class "char-<name from /proc/devices>"; a directory path
    # (the old /dev/dma_heap) is ignored, which left libcamera without its buffers.
    assert entries and all(e.startswith("char-") for e in entries), entries
    assert {e.removeprefix("char-") for e in entries} >= set(CAMERA_DEVICE_CLASSES)
    assert CAMERA_DEVICE_CLASSES == ("video4linux", "media", "dma_heap")
    assert unit_device_problems(UNIT.read_text()) == []


def test_a_directory_or_missing_class_is_reported(tmp_path):
    text = "[Service]\nDeviceAllow=char-video4linux rw\nDeviceAllow=/dev/dma_heap rw\n"
    problems = unit_device_problems(text + f"DeviceAllow={tmp_path} rw\n")
    assert "DeviceAllow=/dev/dma_heap is a directory, which systemd ignores" in problems
    assert f"DeviceAllow={tmp_path} is a directory, which systemd ignores" in problems
    assert "no DeviceAllow=char-media" in problems and "no DeviceAllow=char-dma_heap" in problems


def test_restart_is_prevented_for_the_fatal_exit_statuses():
    lines = [line for line in UNIT.read_text().splitlines() if line.startswith("RestartPreventExitStatus=")]
    assert len(lines) == 1
    assert tuple(int(v) for v in lines[0].partition("=")[2].split()) == NO_RESTART == (2, 3, 4, 5)


def test_install_pi_restarts_on_upgrade_and_compiles_nothing():
    script = (REPO / "scripts" / "install-pi").read_text()
    commands = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    text = "\n".join(commands)
    assert "systemctl restart facegate.service" in text
    assert "python3-systemd" in text and "python3-picamera2" in text
    for compiler_bit in ("gcc", "libsystemd-dev", "python3-dev", "[systemd]"):
        assert compiler_bit not in text, compiler_bit
    assert "--system-site-packages" in text and "[pios]" in text and "--force-reinstall" in text
    assert "arm64" in text  # 64-bit only


def test_doctor_unit_check_on_the_shipped_and_the_old_unit(tmp_path):
    from daemon.services.doctor import check_unit

    assert check_unit((UNIT,)).status == "ok"
    old = tmp_path / "facegate.service"
    old.write_text(UNIT.read_text().replace("DeviceAllow=char-dma_heap rw", "DeviceAllow=/dev/dma_heap rw"))
    check = check_unit((old,))
    assert check.status == "fail" and "/dev/dma_heap is a directory" in check.detail and check.fix
    assert check_unit((tmp_path / "absent.service",)).status == "skip"
