"""Webhook sink: POST each event as JSON to a URL, signed with HMAC-SHA256 (docs/API.md, Webhooks).

Headers of every delivery (each attempt is signed afresh, so receivers may refuse old timestamps):

- ``X-Facegate-Event-Id``: the event id (deduplicate on it: delivery is at least once)
- ``X-Facegate-Timestamp``: Unix seconds when this attempt was signed
- ``X-Facegate-Signature``: ``v1=`` + hex HMAC-SHA256(secret, timestamp + "." + body)
- ``X-Facegate-Attempt``: 1 for the first attempt, then 2, 3 …

2xx is success. 408, 425, 429, any 5xx, a redirect, a timeout or a network error is retried;
any other 4xx means the receiver refuses this event for good (logged, counted, not retried).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from daemon.ops.ratelimit import RateLimitedLog
from daemon.services.sinks.base import DeliveryError, DurableSink, Event, EventRejected, OutputError

log = logging.getLogger(__name__)

SIGNATURE_VERSION = "v1"
RETRIED_4XX = frozenset({408, 425, 429})
DEFAULT_SECRET_NAME = "webhook_secret"
USER_AGENT = "facegate-webhook/1"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Facegate-Signature value for a body sent at ``timestamp`` (Unix seconds, as sent)."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, max_age: float = 300.0) -> bool:
    """Receiver side (the recipe of docs/API.md): right signature and a fresh timestamp."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= max_age and hmac.compare_digest(sign(secret, timestamp, body), signature)


def load_secret(path: Path, create: bool) -> bytes:
    """The secret in ``path`` (surrounding whitespace stripped); created (0600, random) if allowed."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        log.info("created the webhook secret %s", path)
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise OutputError(f"cannot read the webhook secret file {path}: {exc.strerror}") from exc
    if not secret:
        raise OutputError(f"the webhook secret file {path} is empty")
    return secret


def display_url(url: str) -> str:
    """host[:port]/path of a URL: no credentials, no query (which may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return host + (parts.path or "/")


class WebhookSink(DurableSink):
    kind = "webhook"

    def __init__(self, name: str, url: str, secret: bytes, timeout: float) -> None:
        super().__init__(name)
        self.url = url
        self.timeout = timeout
        self._secret = secret
        self._session: aiohttp.ClientSession | None = None
        self._warn = RateLimitedLog(log)

    async def start(self, wake: Any) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, event: Event, attempt: int) -> None:
        if self._session is None:
            raise DeliveryError("webhook sink not started")
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Facegate-Event-Id": str(event["id"]),
            "X-Facegate-Timestamp": timestamp,
            "X-Facegate-Signature": sign(self._secret, timestamp, body),
            "X-Facegate-Attempt": str(attempt),
        }
        try:
            post = self._session.post(self.url, data=body, headers=headers, allow_redirects=False)
            async with post as resp:
                status = resp.status
                await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._failed(f"{type(exc).__name__}: {exc}".rstrip(": "), reachable=False)
            raise DeliveryError(self.last_error or "") from exc
        if 200 <= status < 300:
            self.connected, self.last_error = True, None
            return
        self._failed(f"HTTP {status}", reachable=status < 500)
        if 400 <= status < 500 and status not in RETRIED_4XX:
            raise EventRejected(f"{self.name} refused event {event['id']}: HTTP {status}")
        raise DeliveryError(f"{self.name}: HTTP {status}")

    def _failed(self, error: str, reachable: bool) -> None:
        self.connected, self.last_error = reachable, error
        self._warn.warning("deliver", "webhook %s: delivery failed: %s", self.name, error)
