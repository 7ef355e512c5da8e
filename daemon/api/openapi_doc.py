"""The OpenAPI 3.1 document, kept as data: daemon/api/openapi/*.yaml, merged here.

``base.yaml`` holds what every route shares (info, security, common schemas and responses); every other
file is one API family: ``paths`` and the ``components`` only it uses (top-level ``x-*`` keys hold YAML
anchors and are dropped). A path, a method or a component defined twice is an error naming both files,
so two families cannot silently overwrite each other. tests/test_openapi.py keeps the document equal to
the router.
"""

from __future__ import annotations

import functools
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).resolve().with_name("openapi")
BASE_FILE = "base.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10× faster
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class SpecError(ValueError):
    """The document's files do not merge into one document."""


def load_document(spec_dir: Path = SPEC_DIR) -> dict[str, Any]:
    """The merged document (a fresh dict each call)."""
    document = _read(spec_dir / BASE_FILE)
    document.setdefault("paths", {})
    document.setdefault("components", {})
    origin: dict[tuple[str, ...], str] = {}
    for path, item in document["paths"].items():
        for method in item:
            origin[("paths", path, method)] = BASE_FILE
    for kind, entries in document["components"].items():
        for name in entries:
            origin[("components", kind, name)] = BASE_FILE
    for file in sorted(spec_dir.glob("*.yaml")):
        if file.name != BASE_FILE:
            _merge(document, _read(file), file.name, origin)
    document["info"]["version"] = _version(document["info"].get("version", "0"))
    return document


@functools.cache
def document_json() -> bytes:
    """The document as served at GET /openapi.json (built once per process: it is package data)."""
    return json.dumps(load_document(), ensure_ascii=False, separators=(",", ":")).encode()


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (METHOD, path) the document describes."""
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in HTTP_METHODS
    }


def _read(file: Path) -> dict[str, Any]:
    data = yaml.load(file.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    if not isinstance(data, dict):
        raise SpecError(f"{file.name}: the top level must be a mapping")
    return {key: value for key, value in data.items() if not str(key).startswith("x-")}


def _merge(
    document: dict[str, Any], part: dict[str, Any], name: str, origin: dict[tuple[str, ...], str]
) -> None:
    unknown = set(part) - {"paths", "components"}
    if unknown:
        raise SpecError(
            f"{name}: only paths and components (and x-* anchors) belong here, not {sorted(unknown)}"
        )
    for path, item in (part.get("paths") or {}).items():
        target = document["paths"].setdefault(path, {})
        for method, operation in item.items():
            _claim(origin, ("paths", path, method), name)
            target[method] = operation
    for kind, entries in (part.get("components") or {}).items():
        target = document["components"].setdefault(kind, {})
        for entry, value in entries.items():
            _claim(origin, ("components", kind, entry), name)
            target[entry] = value


def _claim(origin: dict[tuple[str, ...], str], key: tuple[str, ...], name: str) -> None:
    if key in origin:
        raise SpecError(f"{'/'.join(key)} is defined in both {origin[key]} and {name}")
    origin[key] = name


def _version(default: str) -> str:
    try:
        return metadata.version("facegate")
    except metadata.PackageNotFoundError:
        return default
