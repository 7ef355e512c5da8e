"""Per-client rate limits with bounded memory: failed authentications, and expensive requests.

A client is its address (IPv6 by its /64: one host can change the rest at will). Each table keeps at
most ``max_clients`` entries and forgets the least recently seen client first, so a flood of addresses
costs a fixed amount of memory. Times come from an injectable monotonic clock.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]


def client_key(address: str | None) -> str:
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


class _Table:
    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self.entries: OrderedDict[str, list[float]] = OrderedDict()

    def get(self, key: str) -> list[float] | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: list[float]) -> None:
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_clients:
            self.entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self.entries)


class FailureLimiter:
    """At most max_failures failed authentications per client in a window; then 429 until it ends."""

    def __init__(self, max_failures: int, window: float, max_clients: int, clock: Clock = time.monotonic):
        self.max_failures = max_failures
        self.window = window
        self.table = _Table(max_clients)
        self.clock = clock

    def retry_after(self, key: str) -> float | None:
        """Seconds until the client may try again, or None when it is not blocked."""
        entry = self.table.get(key)
        if entry is None:
            return None
        started, count = entry
        left = started + self.window - self.clock()
        if left <= 0:
            return None
        return left if count >= self.max_failures else None

    def failed(self, key: str) -> None:
        now = self.clock()
        entry = self.table.get(key)
        if entry is None or now - entry[0] >= self.window:
            self.table.put(key, [now, 1.0])
        else:
            entry[1] += 1


class TokenBucket:
    """``rate`` requests per second per client on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, max_clients: int, clock: Clock = time.monotonic):
        self.rate = rate
        self.burst = float(burst)
        self.table = _Table(max_clients)
        self.clock = clock

    def take(self, key: str) -> float | None:
        """Spend one request; None when allowed, else the seconds until one is available."""
        now = self.clock()
        entry = self.table.get(key)
        if entry is None:
            self.table.put(key, [self.burst - 1, now])
            return None
        tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
        entry[1] = now
        if tokens < 1:
            entry[0] = tokens
            return (1 - tokens) / self.rate
        entry[0] = tokens - 1
        return None
