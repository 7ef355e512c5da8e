"""The web admin page at /ui/: static pages, sign-in with a pasted token, and the session middleware.

Why plain files and no framework: a handful of pages that call the same JSON APIs an integrator uses
need no build step, no bundler and no third-party script; the whole page ships as a few kB of HTML,
CSS and ES modules inside the package, loads fast from a Pi and runs under a strict
Content-Security-Policy (no inline script or style at all). Names and descriptions are only ever put
into the page with textContent, never parsed as HTML.

Sign-in: the token is posted once (POST /ui/login, a plain form) and becomes a session
(daemon/services/ui_sessions.py); the browser keeps only an HttpOnly, SameSite=Strict cookie (Secure
under TLS). The session middleware turns a request that carries the cookie (and no Authorization
header) into one with the session's bearer token, so every API route applies that token's rights. A
state-changing request must also carry the session's CSRF token in X-CSRF-Token.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from daemon.api.families import error_response
from daemon.api.middleware import Handler
from daemon.appkeys import CONFIG, PRINCIPAL
from daemon.services.ratelimit import FailureLimiter, client_key
from daemon.services.tokens import TokenRegistry
from daemon.services.ui_sessions import Session, SessionStore

R = TypeVar("R", bound=web.StreamResponse)

COOKIE = "facegate_session"
CSRF_HEADER = "X-CSRF-Token"
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
STATIC_PREFIX = "/ui/static/"

UI_SESSIONS = web.AppKey("ui_sessions", SessionStore)


def static_files() -> dict[str, Path]:
    """URL path → file for every asset under daemon/web/static (read once at start)."""
    root = WEB_DIR / "static"
    return {
        STATIC_PREFIX + str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in CONTENT_TYPES
    }


def ui_public_paths() -> set[str]:
    """Routes the auth middleware lets through: the page shell, sign-in, and the static assets (none of
    them shows library data; /ui/ itself redirects to the sign-in page without a session)."""
    return {"/ui", "/ui/", "/ui/login", "/ui/logout", "/ui/session", *static_files()}


def security_headers(response: R, *, cache: bool = False) -> R:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin: a form POST then carries its Origin (with no-referrer, Chromium sends "Origin: null").
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "private, max-age=300" if cache else "no-store"
    return response


def _same_origin(request: web.Request) -> bool:
    """A browser's POST names the page it came from: refuse one from another site."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.scheme}://{request.host}"


def make_session_middleware(store: SessionStore) -> Middleware:
    @web.middleware
    async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE)
        if cookie is None or "Authorization" in request.headers or request.path.startswith("/ui"):
            return await handler(request)
        session = store.get(cookie)
        if session is None:
            return await handler(request)  # answered as without a session (401), the page signs in again
        if request.method not in SAFE_METHODS and not session.csrf_matches(request.headers.get(CSRF_HEADER)):
            return error_response(request, 403, "CSRF check failed: send the session's X-CSRF-Token")
        headers = CIMultiDict(request.headers)
        headers["Authorization"] = f"Bearer {session.token}"
        request[PRINCIPAL] = session.principal  # for the audit line of the outer middleware
        return await handler(request.clone(headers=headers))

    return session_middleware


def setup_ui(app: web.Application, tokens: TokenRegistry, failures: FailureLimiter) -> None:
    """Routes of /ui/ and the session middleware (inserted before the auth middleware). Sign-in checks
    the token against the same registry the auth middleware uses; the page learns the token's scopes
    (to hide what it may not do: the server refuses it anyway)."""
    config = app[CONFIG].ui
    store = SessionStore(config.session_hours * 3600, config.max_sessions)
    app[UI_SESSIONS] = store
    app.middlewares.insert(1, make_session_middleware(store))
    limiter = failures  # the auth middleware's: a failed sign-in is a failed authentication
    assets = {path: (file.read_bytes(), CONTENT_TYPES[file.suffix]) for path, file in static_files().items()}
    index_html = (WEB_DIR / "index.html").read_bytes()
    login_template = (WEB_DIR / "login.html").read_text(encoding="utf-8")

    def login_page(message: str = "", status: int = 200) -> web.Response:
        body = login_template.replace("{message}", html.escape(message))
        response = web.Response(text=body, content_type="text/html", status=status)
        return security_headers(response)

    def session_of(request: web.Request) -> Session | None:
        return store.get(request.cookies.get(COOKIE))

    async def root(request: web.Request) -> web.StreamResponse:
        if session_of(request) is None:
            raise web.HTTPSeeOther("/ui/login")
        if request.path != "/ui/":
            raise web.HTTPPermanentRedirect("/ui/")
        return security_headers(web.Response(body=index_html, content_type="text/html"))

    async def get_login(request: web.Request) -> web.StreamResponse:
        if session_of(request) is not None:
            raise web.HTTPSeeOther("/ui/")
        return login_page()

    async def post_login(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            return login_page("This sign-in came from another site and was refused.", 403)
        client = client_key(request.remote)
        wait = limiter.retry_after(client)
        if wait is not None:
            response = login_page(f"Too many failed sign-ins: try again in {int(wait) + 1} s.", 429)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        form = await request.post()
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        entry = tokens.lookup(token) if token else None
        principal = entry.name if entry is not None else None
        if principal is None:
            limiter.failed(client)
            return login_page("That token is not valid on this device.", 403)
        session = store.create(token, principal)
        response = web.HTTPSeeOther("/ui/")
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(config.session_hours * 3600),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
        raise response

    async def post_logout(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is not None:
            if not _same_origin(request) or not session.csrf_matches(request.headers.get(CSRF_HEADER)):
                return error_response(request, 403, "CSRF check failed: send the session's X-CSRF-Token")
            store.delete(session.id)
        response = web.Response(status=204)
        response.del_cookie(COOKIE, path="/")
        return security_headers(response)

    async def get_session(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            return security_headers(web.json_response({"signedIn": False}, status=401))
        routes = {getattr(r, "canonical", "") for r in request.app.router.resources()}
        entry = tokens.lookup(session.token)
        body = {
            "signedIn": True,
            "principal": session.principal,
            "scopes": sorted(entry.granted) if entry is not None else [],
            "csrf": session.csrf,
            "expiresIn": round(store.seconds_left(session)),
            # What this device serves, so the pages ask only for what exists.
            "features": {
                "camera": bool(request.app[CONFIG].camera.source),
                "events": "/api/events" in routes,
                "audit": "/api/admin/audit" in routes,
            },
        }
        return security_headers(web.json_response(body))

    async def asset(request: web.Request) -> web.StreamResponse:
        found = assets.get(request.path)
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        return security_headers(web.Response(body=body, content_type=content_type), cache=True)

    router = app.router
    router.add_get("/ui", root)
    router.add_get("/ui/", root)
    router.add_get("/ui/login", get_login)
    router.add_post("/ui/login", post_login)
    router.add_post("/ui/logout", post_logout)
    router.add_get("/ui/session", get_session)
    for path in assets:
        router.add_get(path, asset)
