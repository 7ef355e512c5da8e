"""The layering rule of docs/ARCHITECTURE.md, checked on the imports of every module:
api → services → vision | library | camera, and services know nothing of the HTTP server."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

DAEMON = REPO / "daemon"

# Each package: the imports (module prefixes) it must not use, and the known exceptions (module → why).
RULES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "services": (
        ("aiohttp", "daemon.api", "daemon.appkeys", "daemon.app"),
        {"daemon/services/sinks/webhook.py": "aiohttp as an HTTP *client* to deliver webhooks"},
    ),
    "vision": (
        ("aiohttp", "sqlite3", "asyncio", "daemon.api", "daemon.services", "daemon.library", "daemon.camera"),
        {},
    ),
    "library": (("aiohttp", "cv2", "daemon.api", "daemon.services", "daemon.camera", "daemon.vision"), {}),
    "camera": (("aiohttp", "daemon.api", "daemon.appkeys"), {}),
    "api": (("numpy", "cv2", "sqlite3"), {}),
}


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def breaks(names: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names for f in forbidden if n == f or n.startswith(f + "."))


@pytest.mark.parametrize("package", sorted(RULES))
def test_a_layer_imports_nothing_above_it(package):
    forbidden, allowed = RULES[package]
    found = {}
    for path in sorted((DAEMON / package).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        bad = breaks(imports_of(path), forbidden)
        if bad and rel not in allowed:
            found[rel] = bad
    assert found == {}, f"{package}/ imports a layer it must not (docs/ARCHITECTURE.md, Layers): {found}"


def test_the_rule_sees_a_breach(tmp_path):
    """The check itself: a service importing aiohttp's server and an API module is caught."""
    module = tmp_path / "bad.py"
    module.write_text("from aiohttp import web\nimport daemon.api.stream\nfrom . import sibling\n")
    assert breaks(imports_of(module), RULES["services"][0]) == ["aiohttp", "daemon.api.stream"]
