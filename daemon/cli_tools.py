"""Offline tools of the `facegate` command (detect, embed, compare): the vision core without a daemon."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the offline subcommands (filled in as the vision core lands)."""
