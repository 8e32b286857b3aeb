"""The search space: dotted recipe keys with a range or a list of choices, checked against
the config schema before any trial, and suggested through an Optuna trial.

    train.learning_rate: {log_uniform: [1e-4, 3e-3]}
    train.warmup_ratio: {uniform: [0.0, 0.2], step: 0.05}
    peft.r: {choice: [4, 8, 16, 32]}
    model.config_overrides.num_hidden_layers: {uniform: [1, 4]}    # a key inside a dict field

A range over an integer field (or over integers, inside a dict field) is suggested as an
integer.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmkit.config import coerce, fields_of, is_section
from llmkit.errors import ConfigError

KINDS = ("uniform", "log_uniform", "choice")


@dataclass(frozen=True)
class Param:
    key: str  # dotted recipe key, also the Optuna parameter name
    kind: str  # uniform, log_uniform or choice
    values: tuple  # (low, high) or the choices
    integer: bool = False
    step: float | int | None = None

    def suggest(self, trial) -> Any:
        """The trial's value (Optuna keeps it in ``trial.params[key]``)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        log = self.kind == "log_uniform"
        if self.integer:
            return trial.suggest_int(self.key, low, high, step=self.step or 1, log=log)
        return trial.suggest_float(self.key, low, high, step=self.step, log=log)

    @property
    def corners(self) -> list[Any]:
        """Values that a valid space must allow: both ends, or every choice."""
        return list(self.values)


def load_space(path: str | Path, config_cls: type) -> list[Param]:
    """Read and check a space file against ``config_cls``: one-line errors, nothing run."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space {path} not found; pass a YAML file to --space")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise ConfigError(f"search space {path}: not valid YAML; fix the syntax") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"search space {path}: expected a mapping of dotted keys to ranges")
    return [parse_param(str(key), spec, config_cls, path) for key, spec in raw.items()]


def parse_param(key: str, spec: Any, config_cls: type, where: Path | str) -> Param:
    tp = field_type(config_cls, key)
    here = f"search space {where}: {key}"
    if not isinstance(spec, dict) or len(set(spec) & set(KINDS)) != 1:
        raise ConfigError(f"{here}: give one of {', '.join(KINDS)}, e.g. {{uniform: [0.0, 0.2]}}")
    (kind,) = set(spec) & set(KINDS)
    extra = set(spec) - {kind, "step"}
    if extra:
        raise ConfigError(f"{here}: unknown setting {sorted(extra)[0]!r}; use {kind} and step")
    values = spec[kind]
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{here}: {kind} needs a list, e.g. {kind}: [1, 2]")
    if kind == "choice":
        if spec.get("step") is not None:
            raise ConfigError(f"{here}: step applies to ranges, not to choice")
        return Param(key, kind, tuple(choice_value(v, tp, here) for v in values))
    if len(values) != 2:
        raise ConfigError(f"{here}: {kind} needs [low, high], got {values!r}")
    integer = tp is int or (tp is Any and all(isinstance(v, int) for v in values))
    if tp not in (int, float, Any) or any(isinstance(v, bool) for v in values):
        raise ConfigError(f"{here}: a range needs a number field; use choice: [...] instead")
    try:
        low, high = (coerce(v, int if integer else float, key) for v in values)
    except ConfigError:
        what = "integers" if integer else "numbers"
        raise ConfigError(f"{here}: {kind} bounds must be {what}") from None
    if low > high:
        raise ConfigError(f"{here}: low {low} is above high {high}; swap them")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{here}: a log range must be above 0, got low {low}; use e.g. 1e-5")
    step = spec.get("step")
    if step is not None:
        if kind == "log_uniform":
            raise ConfigError(f"{here}: step cannot be used with log_uniform")
        if not isinstance(step, int | float) or isinstance(step, bool) or step <= 0:
            raise ConfigError(f"{here}: step must be a number > 0, got {step!r}")
        if integer and step != int(step):
            raise ConfigError(f"{here}: step of an integer range must be an integer")
    if not all(math.isfinite(v) for v in (low, high)):
        raise ConfigError(f"{here}: bounds must be finite")
    return Param(key, kind, (low, high), integer, step)


def choice_value(value: Any, tp: Any, here: str) -> Any:
    """A choice as Optuna can store it (None, bool, int, float, str); lists as 'a,b'."""
    if isinstance(value, list) and typing.get_origin(tp) is list:
        value = ",".join(str(v) for v in value)
    if value is not None and not isinstance(value, bool | int | float | str):
        raise ConfigError(f"{here}: choices must be numbers, strings, booleans or null")
    coerce(value, tp, here.split(": ", 1)[-1])
    return value


def field_type(config_cls: type, key: str) -> Any:
    """The schema type at a dotted key; keys inside a dict field are free (``Any``)."""
    node, parts = config_cls, key.split(".")
    for i, part in enumerate(parts):
        known = fields_of(node)
        if part not in known:
            where = ".".join(parts[:i]) or "the top level"
            raise ConfigError(
                f"search space key {key!r}: {part!r} is not a config field of "
                f"{where}; valid: {', '.join(known)}"
            )
        tp = known[part][1]
        rest = parts[i + 1 :]
        if is_section(tp):
            if not rest:
                raise ConfigError(f"search space key {key!r} is a section; name a field in it")
            node = tp
            continue
        if rest and typing.get_origin(tp) is not dict:
            raise ConfigError(f"search space key {key!r}: {part!r} has no fields inside")
        return Any if rest else _without_none(tp)
    raise ConfigError(f"search space key {key!r} is empty")


def _without_none(tp: Any) -> Any:
    """``int | None`` -> ``int``: a search space suggests values, not None (choice can)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def apply(values: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key in recipe values, reading a dict field given as a YAML string
    (``--model.config_overrides "{hidden_size: 64}"``) so a key inside it can be set."""
    *parents, leaf = key.split(".")
    node = values
    for part in parents:
        child = node.get(part)
        if isinstance(child, str):
            child = yaml.safe_load(child) or {}
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {key}: {part} is {child!r}, not a mapping")
        node[part] = child
        node = child
    node[leaf] = value
