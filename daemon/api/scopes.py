"""Which scope each route needs: the one table to extend when a route is added.

A rule names a method (``*`` for any) and a route pattern as aiohttp writes it (``/api/faces/{faceToken}``);
a pattern ending in ``*`` is a prefix (``/api/door/*``). The first matching rule wins. A route no rule
names needs ``admin`` (fail closed; ``unscoped_routes`` lists them, and a test keeps that list empty).

Flags: ``expensive`` routes (inference, uploads) count against the per-client request rate;
``stream_link`` routes also accept a signed URL or HTTP Basic with a stream-only token.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from daemon.services.tokens import ADMIN, LIBRARY, METRICS, PRIVACY, READ, RECOGNIZE, STREAM

PUBLIC = "public"  # no token needed (details of /health need one)


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: str
    scopes: tuple[str, ...]  # any one of them is enough (admin always is)
    expensive: bool = False
    stream_link: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        if self.pattern.endswith("*"):
            return path.startswith(self.pattern[:-1])
        return path == self.pattern


def _r(method: str, pattern: str, *scopes: str, expensive: bool = False, stream_link: bool = False) -> Rule:
    return Rule(method, pattern, scopes, expensive, stream_link)


RULES: tuple[Rule, ...] = (
    _r("GET", "/health", PUBLIC),
    # device API: the library
    _r("POST", "/api/faces", LIBRARY, expensive=True),
    _r("POST", "/api/faces/camera", LIBRARY, expensive=True),
    _r("GET", "/api/faces", READ),
    _r("DELETE", "/api/faces/facesLib", ADMIN),
    _r("GET", "/api/faces/image/{imageId}", READ),
    _r("DELETE", "/api/faces/image/{imageId}", LIBRARY),
    _r("GET", "/api/faces/faceToken/{faceToken}", READ),
    _r("GET", "/api/faces/faceToken/{faceToken}/crop.jpg", READ),
    _r("PATCH", "/api/faces/faceToken/{faceToken}", LIBRARY),
    _r("DELETE", "/api/faces/{faceToken}", LIBRARY),
    _r("GET", "/api/faceGroups", READ),
    _r("GET", "/api/faceGroups/{groupId}", READ),
    _r("*", "/api/faceGroups*", LIBRARY),
    # recognition and feature vectors
    _r("POST", "/api/face/compare", RECOGNIZE, expensive=True),
    _r("POST", "/api/face/search", RECOGNIZE, expensive=True),
    _r("POST", "/api/extract_feature", RECOGNIZE, expensive=True),
    _r("POST", "/api/compare_features", RECOGNIZE),
    _r("POST", "/api/compare_image_feature", RECOGNIZE, expensive=True),
    # privacy: blur API and video tasks (owners see only their own tasks, admin all)
    _r("POST", "/api/v1/blur-faces", PRIVACY, expensive=True),
    _r("POST", "/process", PRIVACY, expensive=True),
    _r("POST", "/detect", PRIVACY, expensive=True),
    _r("POST", "/api/v1/tasks/blur-video", PRIVACY, expensive=True),
    _r("*", "/api/v1/tasks/*", PRIVACY),
    # camera stream
    _r("GET", "/api/stream.mjpg", STREAM, stream_link=True),
    _r("GET", "/api/snapshot.jpg", STREAM, stream_link=True, expensive=True),
    _r("GET", "/api/stream/info", STREAM, READ),
    _r("POST", "/api/stream/links", STREAM),
    # routes of other features: events are read-only data; device settings, export/import are admin's
    _r("GET", "/api/events*", READ),
    _r("*", "/api/door/*", ADMIN),
    _r("*", "/api/admin/*", ADMIN),  # library export / import, doctor (ops_api.py, config_api.py)
    _r("GET", "/api/config", ADMIN),
    # the daemon itself: metrics for a scraper's token; the API's description and its viewer for anyone
    # (metrics_api.py: metrics.public_on_loopback; docs.py: api_docs.enabled)
    _r("GET", "/metrics", METRICS),
    _r("GET", "/openapi.json", PUBLIC),
    _r("GET", "/docs", PUBLIC),
    _r("GET", "/docs/*", PUBLIC),
    # the web page's shell, sign-in and static files (daemon/api/ui.py); its data comes from /api routes
    _r("*", "/ui*", PUBLIC),
)
FALLBACK = Rule("*", "*", (ADMIN,))


def rule_for(method: str, pattern: str) -> Rule:
    method = "GET" if method == "HEAD" else method
    return next((rule for rule in RULES if rule.matches(method, pattern)), FALLBACK)


def route_pattern(request: web.Request) -> str | None:
    """The pattern of the route serving the request (None: no route, the answer is 404/405)."""
    route = getattr(request.match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else None


def unscoped_routes(app: web.Application) -> list[str]:
    """Routes of app no rule names (they need admin)."""
    missing = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "OPTIONS"):
            continue
        if rule_for(route.method, resource.canonical) is FALLBACK:
            missing.append(f"{route.method} {resource.canonical}")
    return missing


def stream_link_paths() -> frozenset[str]:
    return frozenset(rule.pattern for rule in RULES if rule.stream_link)
