"""Typed keys for what the Application owns (aiohttp's web.AppKey: no globals, no string keys)."""

from __future__ import annotations

from aiohttp import web

from daemon.config import Config
from daemon.services.status import DaemonStatus
from daemon.services.workers import InferencePool

CONFIG = web.AppKey("config", Config)
STATUS = web.AppKey("status", DaemonStatus)
POOL = web.AppKey("pool", InferencePool)

# Per-request values set by the middlewares.
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", str)
SCOPES = web.RequestKey("scopes", frozenset)
