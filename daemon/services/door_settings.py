"""The door's settings at run time: the ``checkin`` section of the config file, overlaid with the
changes integrators made through the API, kept in ``<state_dir>/door-settings.json``.

A change is validated exactly like the file (config_schema.build on the merged section, so errors
name the key path, ``checkin.cooldown: -1 is below the minimum 0``), written atomically (temporary
file, fsync, rename, fsync of the directory) and only then handed to the running door. A bad change
is refused whole and changes nothing. At start, an override file that no longer validates (a key
removed by an upgrade, a hand edit) is ignored with an error in the log and in /health: the door
runs with the file's settings rather than not at all.

Blocking file I/O: callers run these methods on a dedicated thread (DoorService's I/O thread).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from daemon.config import CheckinConfig
from daemon.config_schema import build
from daemon.errors import ConfigError
from daemon.ops.private_files import fsync_dir, write_private

log = logging.getLogger(__name__)

OVERRIDE_FILE = "door-settings.json"
#: Keys fixed at start (the process's own resources): changing them needs a restart.
FIXED_KEYS = frozenset({"enabled", "sse_max_clients", "sse_queue", "sse_heartbeat"})
RUNTIME_KEYS = tuple(f.name for f in fields(CheckinConfig) if f.name not in FIXED_KEYS)


class DoorSettingsStore:
    def __init__(self, base: CheckinConfig, state_dir: Path) -> None:
        self.base = base
        self.path = Path(state_dir) / OVERRIDE_FILE
        self._lock = threading.Lock()
        self.overrides: dict[str, Any] = {}
        self.load_error: str | None = None
        self.current = base

    def load(self) -> CheckinConfig:
        """Read the override file (if any) and return the effective settings."""
        with self._lock:
            if not self.path.exists():
                return self.current
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.current = self._merge(data)
                self.overrides = dict(data)
            except (OSError, ValueError, ConfigError) as exc:
                self.load_error = f"{self.path}: ignored: {exc}"
                log.error("door settings %s", self.load_error)
            return self.current

    def update(self, patch: Any) -> CheckinConfig:
        """Apply ``patch`` (a mapping of checkin keys) on top of the current overrides; ConfigError
        names the key path and nothing changes."""
        if not isinstance(patch, dict):
            raise ConfigError("checkin: expected a JSON object of settings")
        with self._lock:
            merged = {**self.overrides, **patch}
            settings = self._merge(merged)
            self._write(merged)
            self.overrides, self.current, self.load_error = merged, settings, None
            return settings

    def reset(self) -> CheckinConfig:
        """Drop every override: back to the config file's settings."""
        with self._lock:
            self.path.unlink(missing_ok=True)
            fsync_dir(self.path.parent)
            self.overrides, self.current, self.load_error = {}, self.base, None
            return self.base

    def _merge(self, overrides: Any) -> CheckinConfig:
        if not isinstance(overrides, dict):
            raise ConfigError("checkin: expected a mapping of settings")
        for key in overrides:
            if key in FIXED_KEYS:
                raise ConfigError(f"checkin.{key}: fixed at start (edit the config file and restart)")
        data = {**asdict(self.base), **overrides}
        return build(CheckinConfig, data, "checkin")

    def _write(self, data: dict[str, Any]) -> None:
        write_private(self.path, json.dumps(data, indent=2, sort_keys=True))


def runtime_view(settings: CheckinConfig) -> dict[str, Any]:
    """The settings an integrator can read and change (GET /api/door/settings)."""
    values = asdict(settings)
    return {key: values[key] for key in RUNTIME_KEYS}
