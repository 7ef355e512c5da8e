"""POST /api/stream/links: mint a signed URL for the MJPEG stream or the snapshot.

Body (JSON, optional): ``{"path": "/api/stream.mjpg" | "/api/snapshot.jpg", "seconds": 300}`` (default:
auth.signed_url_seconds);
answer ``{"url": "/api/stream.mjpg?expires=…&by=…&sig=…", "expires_at": "…Z", "path": …}``. The URL
works without any header (a browser <img>, a camera integration) for that path only, until it expires,
and while the minting token keeps the stream scope. Errors are ``{"error": …}`` (PLAIN family).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from daemon.api.auth import LINKS
from daemon.api.families import PLAIN, error_response, speaks
from daemon.api.scopes import stream_link_paths
from daemon.appkeys import CONFIG, PRINCIPAL
from daemon.services.stream_links import StreamLinks


def setup_stream_links(app: web.Application) -> None:
    config = app[CONFIG]
    app[LINKS] = StreamLinks(config.stream_key_path, config.auth.signed_url_max_seconds)
    app.cleanup_ctx.append(_links_ctx)
    app.router.add_post("/api/stream/links", mint_link)


async def _links_ctx(app: web.Application) -> AsyncIterator[None]:
    await asyncio.get_running_loop().run_in_executor(None, app[LINKS].load)
    yield


@speaks(PLAIN)
async def mint_link(request: web.Request) -> web.Response:
    body: dict[str, Any] = {}
    if request.can_read_body:
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            return error_response(request, 400, "expected a JSON object")
        if not isinstance(body, dict):
            return error_response(request, 400, "expected a JSON object")
    path = body.get("path", "/api/stream.mjpg")
    seconds = body.get("seconds", request.app[CONFIG].auth.signed_url_seconds)
    allowed = sorted(stream_link_paths())
    if path not in allowed:
        return error_response(request, 400, f"path must be one of {', '.join(allowed)}")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        return error_response(request, 400, "seconds must be a positive integer")
    url, expires = request.app[LINKS].sign(path, request[PRINCIPAL], seconds)
    expires_at = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return web.json_response({"url": url, "path": path, "expires_at": expires_at})
