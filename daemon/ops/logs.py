"""Logging set-up: journald when started by systemd, plain stderr lines otherwise."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER="facegate")


def setup_logging(level: str, journald: str, environ: Mapping[str, str] | None = None) -> str:
    """Configure the root logger; returns where logs go ("journald" or "stderr")."""
    env = os.environ if environ is None else environ
    handler: logging.Handler | None = None
    if journald == "always" or (journald == "auto" and env.get("JOURNAL_STREAM")):
        handler = _journal_handler()
    target = "journald"
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        target = "stderr"
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "debug" else logging.INFO)
    return target
