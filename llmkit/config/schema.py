"""Typed run configuration: dataclasses are the one schema.

A run is a YAML recipe plus dotted command-line overrides (``--train.learning_rate 1e-3``).
Every field carries its one-line help in ``metadata["help"]``; the CLI builds ``--help`` from
it, and :func:`from_dict` rejects unknown keys and wrong types before any work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from llmkit.errors import ConfigError

T = TypeVar("T")
CONFIG_FILE = "llmkit_config.yaml"


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with its help line (and allowed values) attached."""
    meta = {"help": help, "choices": choices}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------
# Building configs from YAML and overrides


def fields_of(cls: type) -> dict[str, tuple[dataclasses.Field, Any]]:
    """Field objects with their resolved type hints (postponed annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: (f, hints[f.name]) for f in dataclasses.fields(cls)}


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls: type[T], values: dict[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from nested dicts; unknown keys and wrong types raise one-line errors."""
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'recipe'} must be a mapping, got {values!r}")
    known = fields_of(cls)
    kwargs = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            hint = ", ".join(known)
            raise ConfigError(f"unknown key {name!r}; valid keys here: {hint}")
        f, tp = known[key]
        if is_section(tp):
            kwargs[key] = from_dict(tp, value or {}, prefix=f"{name}.")
        else:
            kwargs[key] = coerce(value, tp, name)
            choices = f.metadata.get("choices")
            if choices and kwargs[key] not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return cls(**kwargs)


def coerce(value: Any, tp: Any, name: str) -> Any:
    """Check (and for CLI strings, convert) a value against a field's type."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return coerce(value, args[0], name)
    if tp is Any:
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return [coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):  # YAML's `true` for a string field with true/false choices
            return "true" if value else "false"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{name} must be a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp} for {name}")


def load_recipe(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} not found; pass an existing YAML file to --recipe")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"recipe {path}{where}: not valid YAML; fix the syntax") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"recipe {path}: the top level must be a mapping of keys")
    return values


def set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = values
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot override {dotted}: {p} is not a section")
    node[leaf] = value


def build(cls: type[T], recipe: str | Path | None, overrides: dict[str, Any]) -> T:
    """Defaults <- recipe <- overrides, then validation."""
    values = load_recipe(recipe) if recipe else {}
    for dotted, value in overrides.items():
        set_dotted(values, dotted, value)
    cfg = from_dict(cls, values)
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save(cfg: Any, folder: str | Path) -> Path:
    """Write the resolved config, so ``--recipe <folder>/llmkit_config.yaml`` repeats the run."""
    path = Path(folder) / CONFIG_FILE
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
