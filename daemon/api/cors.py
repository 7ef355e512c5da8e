"""CORS for the blur API, called from browser pages (seed 000's upload-and-preview page).

Only the routes given (the privacy paths) and only the configured origins: a preflight (OPTIONS with
Access-Control-Request-Method) from an allowed origin is answered 204 here, from any other origin
403; an actual request from an allowed origin gets Access-Control-Allow-Origin (the origin itself, or
``*`` when configured so and credentials are off: the config refuses both together), Vary: Origin and
the headers a page may read. Requests without an Origin header are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from daemon.api.middleware import Handler
from daemon.config import CorsConfig

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Accept")
EXPOSED_HEADERS = ("X-Faces-Count", "X-Request-Id", "Retry-After")


def make_cors_middleware(config: CorsConfig, paths: Iterable[str]) -> Middleware:
    origins = frozenset(config.allowed_origins)
    covered = frozenset(paths)
    wildcard = "*" in origins

    def allow_headers(origin: str) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": "*" if wildcard else origin, "Vary": "Origin"}
        if config.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    @web.middleware
    async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origins or origin is None or request.path not in covered:
            return await handler(request)
        allowed = wildcard or origin in origins
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed or request.headers["Access-Control-Request-Method"].upper() != "POST":
                return web.json_response({"error": "origin or method not allowed"}, status=403)
            headers = allow_headers(origin) | {
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
                "Access-Control-Max-Age": str(config.max_age),
            }
            return web.Response(status=204, headers=headers)
        response = await handler(request)
        if allowed and not response.prepared:
            response.headers.update(allow_headers(origin))
            response.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        return response

    return cors_middleware
