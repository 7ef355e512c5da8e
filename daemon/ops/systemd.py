"""Talking to systemd: readiness, watchdog keep-alives, status and stopping notifications.

Uses systemd-python (``systemd.daemon.notify``) when installed; otherwise sends the same datagram to
$NOTIFY_SOCKET itself, so a daemon installed without the ``systemd`` extra still behaves under
Type=notify. Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def _systemd_notify_function() -> Callable[[str], bool] | None:
    try:
        from systemd import daemon as systemd_daemon
    except ImportError:
        return None
    notify: Callable[[str], bool] = systemd_daemon.notify
    return notify


class SystemdNotifier:
    """sd_notify(3) messages for one process; cheap to call when not under systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.socket_path = env.get("NOTIFY_SOCKET", "")
        self._watchdog_usec = int(env.get("WATCHDOG_USEC", "0") or 0)
        watchdog_pid = env.get("WATCHDOG_PID", "")
        if watchdog_pid and watchdog_pid != str(os.getpid()):
            self._watchdog_usec = 0  # the watchdog is meant for another process
        self._library_notify = _systemd_notify_function()

    @property
    def enabled(self) -> bool:
        return bool(self.socket_path)

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between keep-alives (half the watchdog timeout), None when no watchdog is set."""
        return self._watchdog_usec / 2e6 if self._watchdog_usec > 0 else None

    def notify(self, message: str) -> None:
        if not self.enabled:
            return
        try:
            if self._library_notify is not None:
                self._library_notify(message)
            else:
                self._send_datagram(message)
        except OSError as exc:
            log.warning("systemd notification %r failed: %s", message.split("=")[0], exc)

    def _send_datagram(self, message: str) -> None:
        address = self.socket_path
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1\nSTATUS=stopping")

    async def watchdog_loop(self) -> None:
        """Send WATCHDOG=1 from the event loop itself, so a stuck loop gets the daemon restarted."""
        interval = self.watchdog_interval
        if interval is None or not self.enabled:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)
