"""The `facegate` command: run the daemon, and small tools for people testing a device by hand."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from daemon import __version__
from daemon.config import Config, load_config, with_overrides
from daemon.errors import FacegateError


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", type=Path, help="YAML config file (default: built-in defaults)")
    p.add_argument("--host", help="listen address (overrides server.host)")
    p.add_argument("--port", type=int, help="listen port (overrides server.port)")
    p.add_argument("--state-dir", help="state directory (overrides server.state_dir)")
    p.add_argument("--validate-config", action="store_true", help="check the config and exit")
    p.set_defaults(func=_cmd_run)


def _config_from_args(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    server = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if args.state_dir is not None:
        server["state_dir"] = args.state_dir
    return with_overrides(config, server=server) if server else config


def _cmd_run(args: argparse.Namespace) -> int:
    from daemon.ops.logs import setup_logging
    from daemon.ops.systemd import SystemdNotifier
    from daemon.serve import serve

    config = _config_from_args(args)
    if args.validate_config:
        print(f"config OK: {args.config or 'built-in defaults'}")
        return 0
    setup_logging(config.logging.level, config.logging.journald)
    return asyncio.run(serve(config, SystemdNotifier()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegate", description="Facegate face appliance daemon")
    parser.add_argument("--version", action="version", version=f"facegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    from daemon import cli_tools

    cli_tools.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FacegateError as exc:
        print(f"facegate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
