from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import default_config_text
from daemon.config import Config, load_config, with_overrides
from daemon.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "facegate.yaml"
    path.write_text(text)
    return path


def test_documented_config_matches_the_code():
    """config/facegate.yaml documents every key with its default: regenerate with `facegate defaults`."""
    assert (REPO / "config" / "facegate.yaml").read_text() == default_config_text()


def test_documented_config_loads_to_the_defaults():
    assert load_config(REPO / "config" / "facegate.yaml", environ={}) == load_config(None, environ={})


def test_unknown_key_names_its_path(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key server\.prot"):
        load_config(write(tmp_path, "server:\n  prot: 80\n"), environ={})
    with pytest.raises(ConfigError, match=r"unknown key sever"):
        load_config(write(tmp_path, "sever: {}\n"), environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server:\n  port: eighty\n", r"server\.port: expected int"),
        ("server:\n  port: 70000\n", r"server\.port: 70000 is above the maximum 65535"),
        ("workers:\n  count: 0\n", r"workers\.count: 0 is below the minimum 1"),
        ("models:\n  embedding: fp16\n", r"models\.embedding: 'fp16' is not one of 'int8', 'fp32'"),
        ("server:\n  access_log: 1\n", r"server\.access_log: expected bool"),
        ("server: [1, 2]\n", r"server: expected a mapping"),
        ("- a\n- b\n", r"top level must be a mapping"),
        ("server: {port: [}\n", r"not valid YAML"),
    ],
)
def test_bad_values_fail_with_the_key_path(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), environ={})


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, "server:\n  port: 9000\n")
    config = load_config(path, environ={"FACEGATE_SERVER_PORT": "9100", "FACEGATE_MODELS_NUM_THREADS": "2"})
    assert config.server.port == 9100
    assert config.models.num_threads == 2
    with pytest.raises(ConfigError, match=r"server\.port: expected int"):
        load_config(path, environ={"FACEGATE_SERVER_PORT": "nine"})
    with pytest.raises(ConfigError, match=r"unknown key server\.nope"):
        load_config(path, environ={"FACEGATE_SERVER_NOPE": "1"})


def test_overrides_are_validated_again():
    config = load_config(None, environ={})
    assert with_overrides(config, server={"port": 1234}).server.port == 1234
    with pytest.raises(ConfigError, match=r"server\.port"):
        with_overrides(config, server={"port": -1})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_cli_validate_config(tmp_path):
    good = write(tmp_path, "server:\n  port: 9000\n")
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(good), "--validate-config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("detection:\n  short_min_score: 2\n")
    run = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(bad), "--validate-config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 2
    assert "detection.short_min_score: 2.0 is above the maximum 1" in run.stderr


def test_paths_derive_from_state_dir(tmp_path):
    config = with_overrides(Config(), server={"state_dir": str(tmp_path)})
    assert config.token_path == tmp_path / "tokens"
    assert config.models_path.name == "models"
