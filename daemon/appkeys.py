"""Typed keys for what the Application owns (aiohttp's web.AppKey: no globals, no string keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from daemon.config import Config
from daemon.services.status import DaemonStatus
from daemon.services.workers import InferencePool

if TYPE_CHECKING:
    from daemon.vision.engine import VisionEngine

CONFIG = web.AppKey("config", Config)
STATUS = web.AppKey("status", DaemonStatus)
POOL: web.AppKey[InferencePool[VisionEngine]] = web.AppKey("pool", InferencePool)

# Per-request values set by the middlewares.
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", str)
SCOPES = web.RequestKey("scopes", frozenset)
