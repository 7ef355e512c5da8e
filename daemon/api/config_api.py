"""GET /api/config: the effective configuration (file + environment + defaults), secrets masked.

For the admin page and for support: what the daemon really runs with. A value is masked when its key
names a secret (token, secret, password, key); paths to secret files are not secrets and are shown.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from aiohttp import web

from daemon.appkeys import CONFIG

MASK = "***"
_SECRET_KEY = re.compile(r"(^|_)(token|secret|password|passphrase|key)$")


def masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if _SECRET_KEY.search(key) and value not in ("", None):
        return MASK
    return value


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(masked(asdict(request.app[CONFIG])))


def setup_config_api(app: web.Application) -> None:
    app.router.add_get("/api/config", get_config)
