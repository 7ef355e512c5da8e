"""GET /health: is the daemon able to serve (models loaded)?

Without a token only ``{"status": …}`` (liveness for probes); with any valid token the details (model,
uptime, workers, library, camera …), which say more about the device than an anonymous caller needs.
"""

from __future__ import annotations

from aiohttp import web

from daemon.appkeys import PRINCIPAL, STATUS


async def health(request: web.Request) -> web.Response:
    status = request.app[STATUS]
    body = status.describe()
    code = 200 if body["status"] == "ok" else 503
    if PRINCIPAL not in request:
        body = {"status": body["status"]}
    return web.json_response(body, status=code)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
