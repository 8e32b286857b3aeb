"""Typed run configuration: dataclasses are the one schema.

A run is a YAML recipe plus dotted command-line overrides (``--train.learning_rate 1e-3``).
Every field carries its one-line help in ``metadata["help"]``; the CLI builds ``--help`` from
it, and :func:`from_dict` rejects unknown keys and wrong types before any work starts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
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
# Sections shared by pipelines


@dataclass
class DataConfig:
    train_files: list[str] = option(
        [],
        "local files, folders or globs (.txt .jsonl .json .csv .parquet) or a save_to_disk folder",
    )
    validation_files: list[str] = option([], "held-out files; when empty a split is taken")
    dataset_name: str | None = option(None, "a Hub dataset name instead of train_files")
    dataset_config_name: str | None = option(None, "the Hub dataset's configuration name")
    text_column: str = option("text", "column holding the text in tabular files")
    validation_split: float = option(0.05, "fraction of documents held out when no validation set")
    block_size: int = option(256, "tokens per training block (packed, EOS between documents)")
    cache_dir: str = option(".cache/llmkit", "where tokenized, packed data is cached")
    seed: int = option(0, "seed of the deterministic validation split")


@dataclass
class TokenizerConfig:
    name_or_path: str | None = option(
        None, "existing tokenizer (Hub name or folder); None trains one"
    )
    vocab_size: int = option(4096, "vocabulary size of a trained byte-level BPE tokenizer")


@dataclass
class ModelConfig:
    preset: str | None = option("tiny", "size preset (tiny, small, base) for a model from scratch")
    name_or_path: str | None = option(None, "checkpoint (Hub name or folder) to continue from")
    config_overrides: dict[str, Any] = option({}, "AutoConfig fields, e.g. {num_hidden_layers: 2}")
    trust_remote_code: bool = option(False, "allow model code from the Hub (off: safe loading)")


@dataclass
class TrainConfig:
    max_steps: int = option(1000, "optimizer steps")
    per_device_train_batch_size: int = option(16, "sequences per device per micro-batch")
    per_device_eval_batch_size: int = option(16, "sequences per device for evaluation")
    gradient_accumulation_steps: int = option(1, "micro-batches per optimizer step")
    learning_rate: float = option(1e-3, "peak learning rate")
    weight_decay: float = option(0.1, "AdamW decay (never on norms and biases)")
    adam_beta1: float = option(0.9, "AdamW beta1")
    adam_beta2: float = option(0.95, "AdamW beta2")
    adam_epsilon: float = option(1e-8, "AdamW epsilon")
    max_grad_norm: float = option(1.0, "gradient clipping norm (0 disables)")
    lr_scheduler_type: str = option(
        "cosine", "learning-rate decay after warmup", choices=("cosine", "linear", "constant")
    )
    warmup_ratio: float = option(0.05, "fraction of max_steps spent warming up")
    min_lr_ratio: float = option(0.1, "final learning rate as a fraction of the peak")
    mixed_precision: str = option("no", "autocast precision", choices=("no", "fp16", "bf16"))
    torch_compile: bool = option(False, "compile the model with torch.compile")
    seed: int = option(42, "seed for initialisation and data order")
    logging_steps: int = option(10, "steps between logged training metrics")
    eval_steps: int = option(100, "steps between validation passes (0: only at the end)")
    eval_max_batches: int | None = option(None, "cap on validation batches per pass")
    save_steps: int = option(0, "steps between checkpoints (0: no intermediate checkpoints)")
    save_total_limit: int = option(2, "checkpoints kept (oldest removed)")
    resume: str = option("no", "'auto' resumes from the newest checkpoint; or a checkpoint path")
    report_to: list[str] = option(["tensorboard"], "extra loggers: tensorboard or none")
    progress_bar: bool = option(True, "show a tqdm progress bar")


# ---------------------------------------------------------------------------------------------
# One config per command


@dataclass
class PretrainConfig:
    output_dir: str = option("runs/pretrain", "where the model, tokenizer, metrics and plots go")
    overwrite: bool = option(False, "replace an existing run in output_dir")
    sample_prompt: str = option("The", "prompt of the greedy sample printed at the end")
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        t = self.train
        _positive(
            t,
            "train",
            "max_steps",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
        )
        _non_negative(
            t,
            "train",
            "weight_decay",
            "max_grad_norm",
            "eval_steps",
            "save_steps",
            "warmup_ratio",
            "min_lr_ratio",
        )
        if t.learning_rate <= 0:
            raise ConfigError("train.learning_rate must be > 0")
        if t.save_total_limit < 1:
            raise ConfigError("train.save_total_limit must be >= 1")
        if self.data.block_size < 2:
            raise ConfigError("data.block_size must be >= 2")
        if not 0 <= self.data.validation_split < 1:
            raise ConfigError("data.validation_split must be in [0, 1)")
        if self.tokenizer.vocab_size < 300:
            raise ConfigError("tokenizer.vocab_size must be >= 300 (256 bytes plus merges)")
        if not self.data.train_files and not self.data.dataset_name:
            raise ConfigError(
                "no data: set data.train_files (files, folders, globs) or data.dataset_name"
            )
        if self.model.preset is None and self.model.name_or_path is None:
            raise ConfigError("set model.preset or model.name_or_path")


def _positive(section: object, prefix: str, *names: str) -> None:
    for name in names:
        if getattr(section, name) < 1:
            raise ConfigError(f"{prefix}.{name} must be >= 1, got {getattr(section, name)}")


def _non_negative(section: object, prefix: str, *names: str) -> None:
    for name in names:
        if getattr(section, name) < 0:
            raise ConfigError(f"{prefix}.{name} must be >= 0, got {getattr(section, name)}")


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
