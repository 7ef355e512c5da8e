"""Turning plain YAML data into the typed, frozen config dataclasses of daemon/config.py.

Kept apart from the schema itself so the schema reads as a list of settings. Every error names the key
path (``privacy.blur_method``) so a bad file is fixed in one go.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin

import yaml

from daemon.errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    D = TypeVar("D", bound=DataclassInstance)


def setting(default: Any, doc: str, *, min: float | None = None, max: float | None = None) -> Any:
    """A config field with its default, a one-line description and an optional numeric range."""
    meta = {"doc": doc, "min": min, "max": max}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type) -> Any:
    """A nested section field whose default is the section's own defaults."""
    return dataclasses.field(default_factory=cls, metadata={"doc": cls.__doc__ or ""})


def build(cls: type[D], data: Any, path: str = "") -> D:
    """Validate ``data`` (parsed YAML) against dataclass ``cls``; ConfigError naming the key path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<top level>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]} (known keys here: {', '.join(sorted(fields))})")
    values = {}
    for name, value in data.items():
        key_path = f"{path}.{name}" if path else name
        f = fields[name]
        values[name] = _convert(hints[name], value, key_path)
        _check_range(f, values[name], key_path)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or '<top level>'}: {exc}") from exc


def _check_range(f: dataclasses.Field[Any], value: Any, path: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if lo is not None and value < lo:
        raise ConfigError(f"{path}: {value} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{path}: {value} is above the maximum {hi}")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {tp}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is list:
        (item_type,) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        return [_convert(item_type, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    return _convert_scalar(tp, value, path)


def _convert_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise ConfigError(f"{path}: unsupported config type {tp}")
    raise ConfigError(f"{path}: expected {tp.__name__}, got {type(value).__name__} {value!r}")


def apply_env_overrides(
    data: dict[str, Any], cls: type[DataclassInstance], environ: typing.Mapping[str, str]
) -> dict[str, Any]:
    """Overlay FACEGATE_<SECTION>_<KEY> variables (values parsed as YAML scalars) on the file's data."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    sections = {f.name: f for f in dataclasses.fields(cls)}
    for var, raw in environ.items():
        if not var.startswith("FACEGATE_"):
            continue
        rest = var[len("FACEGATE_") :].lower()
        match = next((s for s in sorted(sections, key=len, reverse=True) if rest.startswith(s + "_")), None)
        if match is None:
            continue  # not a config override (e.g. FACEGATE_URL used by the CLI client)
        key = rest[len(match) + 1 :]
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"environment {var}: not a valid value: {exc}") from exc
        target = data.get(match)
        if not isinstance(target, dict):
            target = {}
        target[key] = value
        data[match] = target
    return data


def render_defaults(cls: type, indent: int = 0) -> list[str]:
    """The documented default YAML for a config class: config/facegate.yaml is exactly this text."""
    lines: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no default")
        pad = " " * indent
        if dataclasses.is_dataclass(default):
            if lines:
                lines.append("")
            lines.append(f"{pad}# {f.metadata.get('doc', '').strip()}")
            lines.append(f"{pad}{f.name}:")
            lines.extend(render_defaults(type(default), indent + 2))
            continue
        doc = f.metadata.get("doc", "")
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None or hi is not None:
            doc += f" [{'' if lo is None else lo}..{'' if hi is None else hi}]"
        choices = get_args(hints[f.name]) if get_origin(hints[f.name]) is Literal else ()
        if choices:
            doc += f" (one of: {', '.join(choices)})"
        lines.append(f"{pad}# {doc}")
        lines.append(f"{pad}{f.name}: {json.dumps(default)}")
    return lines
