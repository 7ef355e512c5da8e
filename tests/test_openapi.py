"""The OpenAPI document equals the router, merges safely, and is served with an offline Swagger UI.

To document a new route: add it under ``paths:`` of its family's file in daemon/api/openapi/ (see the
header of base.yaml). test_document_matches_router names every route missing from either side.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from conftest import AUTH

from daemon.api.docs import DOCS_PATH, UI_ASSETS
from daemon.api.openapi_doc import SpecError, load_document, operations
from daemon.config import with_overrides

# Served but not API routes, so not in the document: the UI pages (lead's /ui/*) and the Swagger UI's
# static files under /docs/. HEAD is aiohttp's automatic twin of every GET.
UNDOCUMENTED = re.compile(r"^/ui(/|$)|^/docs/")


def router_operations(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD" or UNDOCUMENTED.match(resource.canonical):
            continue
        found.add((route.method, resource.canonical))
    return found


def test_document_matches_router(config, model_paths, tokens) -> None:
    from daemon.app import build_app

    # The defaults register every route (the stream's too, without a camera: they answer 503).
    app = build_app(config, model_paths, tokens)
    served, documented = router_operations(app), operations(load_document())
    undocumented = sorted(served - documented)
    unrouted = sorted(documented - served)
    assert not undocumented, f"routes missing from daemon/api/openapi/*.yaml: {undocumented}"
    assert not unrouted, f"documented in daemon/api/openapi/*.yaml but not routed: {unrouted}"


def test_document_is_openapi_3_1_and_references_resolve() -> None:
    document = load_document()
    assert document["openapi"] == "3.1.0"
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = document
        for part in ref.split("/"):
            assert part in node, f"unresolved $ref #/{ref}"
            node = node[part]
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    # Every operation says what it answers, and every non-public one needs the bearer token.
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation.get("responses"), (method, path)
            assert operation.get("tags"), (method, path)


def test_a_route_defined_twice_is_refused(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parent.parent / "daemon" / "api" / "openapi"
    (tmp_path / "base.yaml").write_text((spec / "base.yaml").read_text())
    (tmp_path / "a.yaml").write_text("paths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n")
    (tmp_path / "b.yaml").write_text("paths:\n  /x:\n    post: {responses: {'200': {description: ok}}}\n")
    assert operations(load_document(tmp_path)) == {("GET", "/x"), ("POST", "/x")}
    (tmp_path / "c.yaml").write_text("paths:\n  /x:\n    get: {responses: {'200': {description: ok}}}\n")
    with pytest.raises(SpecError, match=r"paths//x/get is defined in both a.yaml and c.yaml"):
        load_document(tmp_path)
    (tmp_path / "c.yaml").write_text("info: {title: other}\n")
    with pytest.raises(SpecError, match="only paths and components"):
        load_document(tmp_path)


async def test_openapi_json_is_public_and_is_the_document(make_client, config) -> None:
    client = await make_client(config)
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    served = await response.json()
    expected = load_document()
    assert served["paths"] == json.loads(json.dumps(expected["paths"]))
    assert served["openapi"] == "3.1.0"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append(value)


async def test_docs_load_offline_from_the_daemon(make_client, config) -> None:
    """/docs and every file it references come from the daemon itself, without a token."""
    client = await make_client(config)
    page = await client.get(DOCS_PATH)
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    parser = _Refs()
    parser.feed(await page.text())
    assert len(parser.refs) >= 4, parser.refs
    base = f"http://127.0.0.1{DOCS_PATH}"
    scripts = {}
    for ref in parser.refs:
        assert not urlsplit(ref).scheme and not ref.startswith("//"), f"/docs references another host: {ref}"
        path = urlsplit(urljoin(base, ref)).path
        asset = await client.get(path)
        assert asset.status == 200, path
        body = await asset.read()
        assert len(body) > 100, path
        if path.endswith(".js"):
            scripts[path] = body.decode()
    for name in UI_ASSETS:
        assert f"{DOCS_PATH}/{name}" in {urlsplit(urljoin(base, r)).path for r in parser.refs}, name
    bundle = scripts[f"{DOCS_PATH}/swagger-ui-bundle.js"]
    assert "SwaggerUIBundle" in bundle
    (init,) = [text for path, text in scripts.items() if not path.endswith("swagger-ui-bundle.js")]
    # The start-up script loads the document from this daemon and turns off the online validator.
    url = re.search(r'url:\s*"([^"]+)"', init).group(1)
    assert not urlsplit(url).scheme
    document = await client.get(urlsplit(urljoin(base, url)).path)
    assert document.status == 200 and (await document.json())["openapi"] == "3.1.0"
    assert re.search(r"validatorUrl:\s*null", init)


async def test_docs_can_be_turned_off(make_client, config) -> None:
    client = await make_client(with_overrides(config, api_docs={"enabled": False}))
    assert (await client.get(DOCS_PATH)).status == 401  # no longer public, and not routed
    assert (await client.get("/openapi.json", headers=AUTH)).status == 404
