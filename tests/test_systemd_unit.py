"""systemd/facegate.service: the settings the daemon relies on, and systemd's own check of the file."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

UNIT = REPO / "systemd" / "facegate.service"


def service_section() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_unit_has_notify_watchdog_and_hardening():
    service = service_section()
    assert service["Type"] == ["notify"]
    assert int(service["WatchdogSec"][0]) >= 10
    assert service["Restart"] == ["on-failure"]
    assert service["StateDirectory"] == ["facegate"] and service["ConfigurationDirectory"] == ["facegate"]
    assert service["User"] == ["facegate"] and "video" in service["SupplementaryGroups"][0]
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "RestrictSUIDSGID"):
        assert key in service, key
    exec_start = service["ExecStart"][0]
    assert "--state-dir ${STATE_DIRECTORY}" in exec_start and "${CONFIGURATION_DIRECTORY}" in exec_start


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_accepts_the_unit(tmp_path):
    executable = Path(sys.executable).with_name("facegate")
    if not executable.exists():
        pytest.skip("facegate console script not installed in this environment")
    text = UNIT.read_text().replace("/opt/facegate/.venv/bin/facegate", str(executable))
    unit = tmp_path / "facegate.service"
    unit.write_text(text)
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in run.stderr.splitlines() if "facegate.service" in line]
    assert problems == [], run.stderr


def test_sysusers_creates_the_service_user_in_video():
    lines = (REPO / "systemd" / "facegate.sysusers").read_text().splitlines()
    assert any(line.startswith("u facegate ") for line in lines)
    assert "m facegate video" in lines


def test_unit_parses_as_ini():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
