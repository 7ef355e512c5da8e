"""The options every command that reads the configuration shares: --config and --state-dir."""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.config import Config, load_config, with_overrides

CONFIG_HELP = "YAML config file (default: built-in defaults)"
STATE_DIR_HELP = "state directory (overrides server.state_dir)"


def add_config_args(
    p: argparse.ArgumentParser, config_help: str = CONFIG_HELP, state_help: str = STATE_DIR_HELP
) -> None:
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument("--state-dir", help=state_help)


def config_from_args(args: argparse.Namespace) -> Config:
    """The config file (or the defaults) with the command line's overrides: --state-dir, and --host
    and --port where the command has them."""
    config = load_config(args.config)
    server = {
        key: value for key in ("host", "port", "state_dir") if (value := getattr(args, key, None)) is not None
    }
    return with_overrides(config, server=server) if server else config
