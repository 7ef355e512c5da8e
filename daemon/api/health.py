"""GET /health: is the daemon able to serve (models loaded)?"""

from __future__ import annotations

from aiohttp import web

from daemon.appkeys import STATUS


async def health(request: web.Request) -> web.Response:
    status = request.app[STATUS]
    body = status.describe()
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
