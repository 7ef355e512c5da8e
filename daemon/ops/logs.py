"""Logging set-up: journald when started by systemd, plain stderr lines otherwise."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from daemon.textsafe import one_line

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """One record, one line: control characters in the message are escaped (daemon/textsafe.py), so
    a value logged anywhere cannot forge a line; tracebacks keep their lines, indented by Python."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message, limit=None, backslashes=False)
        return super().formatMessage(record)


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="facegate")
    return handler


def setup_logging(level: str, journald: str, environ: Mapping[str, str] | None = None) -> str:
    """Configure the root logger; returns where logs go ("journald" or "stderr")."""
    env = os.environ if environ is None else environ
    handler: logging.Handler | None = None
    if journald == "always" or (journald == "auto" and env.get("JOURNAL_STREAM")):
        handler = _journal_handler()
    target = "journald"
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter(FORMAT))
        target = "stderr"
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "debug" else logging.INFO)
    return target
