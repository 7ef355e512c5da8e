"""GET /openapi.json and the Swagger UI at GET /docs, served by the daemon itself (no CDN).

The UI's files come from the swagger-ui-py package (Swagger UI 5, Apache-2.0), read from its
``static`` folder; only the few the page needs are routed, each by name. The page and its start-up
script are ours: the script is a file (not inline), so the page's Content-Security-Policy allows
scripts, styles and requests from the daemon's own origin only. No token: the document and the UI hold
no data, and a browser cannot send a bearer header for a page it navigates to (config api_docs.enabled
turns them off). The UI's "Authorize" button takes the token for "Try it out".
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from daemon.api.openapi_doc import document_json
from daemon.appkeys import CONFIG

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
INIT_SCRIPT = "facegate-docs.js"
# Swagger UI's files the page loads: name → content type.
UI_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
ASSET_PATHS = frozenset(f"{DOCS_PATH}/{name}" for name in [*UI_ASSETS, INIT_SCRIPT])
DOCS_PUBLIC_PATHS = frozenset({OPENAPI_PATH, DOCS_PATH}) | ASSET_PATHS
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSET_CACHE = "public, max-age=86400"

# Relative URLs: the page works behind a reverse proxy that mounts the daemon under a prefix.
PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Facegate API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/{INIT_SCRIPT}"></script>
</body>
</html>
"""

SCRIPT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    tryItOutEnabled: false,
    persistAuthorization: false
  });
});
"""


def swagger_ui_dir() -> Path:
    """The static folder of the installed swagger-ui-py (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "swagger-ui-py is not installed (a dependency of facegate): pip install swagger-ui-py"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def setup_api_docs(app: web.Application) -> None:
    if not app[CONFIG].api_docs.enabled:
        return
    static = swagger_ui_dir()
    app.router.add_get(OPENAPI_PATH, openapi_json)
    app.router.add_get(DOCS_PATH, docs_page)
    app.router.add_get(f"{DOCS_PATH}/{INIT_SCRIPT}", init_script)
    for name, content_type in UI_ASSETS.items():
        app.router.add_get(f"{DOCS_PATH}/{name}", _asset(static / name, content_type))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=document_json(), content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE,
        content_type="text/html",
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"},
    )


async def init_script(request: web.Request) -> web.Response:
    return web.Response(text=SCRIPT, content_type="text/javascript", headers={"Cache-Control": "no-cache"})


def _asset(path: Path, content_type: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def asset(request: web.Request) -> web.FileResponse:
        headers = {
            "Content-Type": content_type,
            "Cache-Control": ASSET_CACHE,
            "X-Content-Type-Options": "nosniff",
        }
        return web.FileResponse(path, headers=headers)

    asset.__name__ = f"docs_asset_{path.name}"
    return asset
