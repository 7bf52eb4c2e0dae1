"""Stage configuration: frozen dataclasses loaded from YAML plus CLI overrides.

Each stage owns one frozen dataclass config next to its code (``ScanConfig`` in :mod:`ecgkit.ingest`,
``TrainConfig`` in :mod:`ecgkit.trainer`, ...). This module holds the one loader they share: unknown
keys are an error, values are coerced to the field's type, nothing is ``exec``'d.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from ecgkit.errors import ConfigError

C = TypeVar("C")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if value is None:
        return None
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(value, non_none[0], key)
        return value
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = args[0] if args else str
        return tuple(_coerce(v, inner, key) for v in items) if origin is tuple else [
            _coerce(v, inner, key) for v in items]
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"config key {key!r} must be one of {list(args)}, got {value!r}")
        return value
    try:
        if annotation is bool:
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if annotation in (int, float, str):
            return annotation(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key {key!r} expects {annotation.__name__}, got {value!r}") from exc
    return value


def make_config(cls: type[C], values: Mapping[str, Any] | None = None) -> C:
    """Build a frozen dataclass config from a mapping, rejecting unknown keys.

    Raises
    ------
    ConfigError
        On an unknown key or a value that does not fit the field's type.
    """
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} key(s) {unknown}; known keys: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], k) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc


def load_config(cls: type[C], path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                *, section: str | None = None) -> C:
    """Load a config from a YAML file (optionally one top-level ``section``) plus overrides.

    Overrides whose value is ``None`` are ignored, so unset CLI options keep the file's value.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if section is not None:
            loaded = loaded.get(section, {}) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        values.update(loaded)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_config(cls, values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))
