"""Admin reads for the web page and for support.

- GET /api/config: the effective configuration (file + environment + defaults), secrets masked. A
  value is masked when its key names a secret (token, secret, password, key); paths to secret files
  are not secrets and are shown.
- GET /api/admin/tokens: the tokens of the store (name, scopes, created; never a token or its hash).
  Changes are made with `facegate token add|revoke` and take effect at the next start.
- GET /api/admin/doctor: the checks of ``facegate doctor`` (daemon/services/doctor.py) without the
  camera capture (the running daemon owns the camera), run in the worker pool, kept for a minute.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from daemon.appkeys import CONFIG, POOL
from daemon.services.doctor import run_checks
from daemon.services.tokens import TokenStore

MASK = "***"
_SECRET_KEY = re.compile(r"(^|_)(token|secret|password|passphrase|key)$")


def masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if _SECRET_KEY.search(key) and isinstance(value, str) and value:
        return MASK
    return value


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(masked(asdict(request.app[CONFIG])))


DOCTOR_CACHE_SECONDS = 60.0


def setup_config_api(app: web.Application) -> None:
    cache: dict[str, Any] = {"at": -DOCTOR_CACHE_SECONDS, "checks": []}

    async def get_doctor(request: web.Request) -> web.Response:
        now = time.monotonic()
        if now - cache["at"] >= DOCTOR_CACHE_SECONDS:
            config = request.app[CONFIG]
            checks = await request.app[POOL].run(lambda _engine: run_checks(config, camera=False))
            cache.update(at=now, checks=[c.as_dict() for c in checks])
        return web.json_response({"checks": cache["checks"], "ageSeconds": round(now - cache["at"], 1)})

    async def get_tokens(request: web.Request) -> web.Response:
        store = TokenStore(request.app[CONFIG].token_store_path)
        entries = await request.app[POOL].run(lambda _engine: store.load().entries if store.exists() else ())
        return web.json_response(
            {
                "tokens": [
                    {"name": e.name, "scopes": sorted(e.scopes), "created": e.created, "weak": e.weak}
                    for e in entries
                ]
            }
        )

    app.router.add_get("/api/config", get_config)
    app.router.add_get("/api/admin/doctor", get_doctor)
    app.router.add_get("/api/admin/tokens", get_tokens)
