"""Build a causal LM from a preset or config fields, or load one by name or path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    GenerationConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from llmkit.config import ModelConfig
from llmkit.errors import ConfigError, LlmkitError
from llmkit.models.presets import PRESETS


def resolve_config(cfg: ModelConfig, vocab_size: int | None = None) -> PretrainedConfig:
    """The model's config without its weights, so sizes can be checked before any work."""
    if cfg.name_or_path:
        try:
            config = AutoConfig.from_pretrained(
                cfg.name_or_path, trust_remote_code=cfg.trust_remote_code
            )
        except (OSError, ValueError) as e:
            raise LlmkitError(
                f"model.name_or_path {cfg.name_or_path!r}: cannot load its config "
                f"({_first_line(e)}); give a saved model folder or a Hub name"
            ) from None
    else:
        fields = dict(PRESETS.get(cfg.preset))
        if vocab_size is not None:
            fields["vocab_size"] = vocab_size
        config = LlamaConfig(**fields)
    for key, value in cfg.config_overrides.items():
        if not hasattr(config, key) and key not in config.to_dict():
            raise ConfigError(
                f"model.config_overrides.{key}: not a field of {type(config).__name__}"
            )
        setattr(config, key, value)
    return config


def max_positions(config: PretrainedConfig) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        if getattr(config, name, None):
            return int(getattr(config, name))
    return None


def build_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreTrainedModel:
    """A fresh model from config, or a checkpoint (safetensors only unless remote code is on)."""
    config = resolve_config(cfg, vocab_size=len(tokenizer))
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(config, name, getattr(tokenizer, name))
    torch.manual_seed(seed)
    if cfg.name_or_path:
        model = AutoModelForCausalLM.from_pretrained(
            cfg.name_or_path,
            config=config,
            trust_remote_code=cfg.trust_remote_code,
            use_safetensors=None if cfg.trust_remote_code else _safetensors(cfg.name_or_path),
        )
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
    else:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=64,
        do_sample=False,
    )
    return model


@contextmanager
def loading_bar(show: bool) -> Iterator[None]:
    """transformers' weight-loading bar, on only when progress is wanted."""
    was = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if show else hf_logging.disable_progress_bar)()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _safetensors(name_or_path: str) -> bool | None:
    """Local folders must hold safetensors; Hub repos prefer them when they exist."""
    path = Path(name_or_path)
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise LlmkitError(
                f"model folder {path}: no *.safetensors weights; convert it with "
                "save_pretrained(..., safe_serialization=True) or set model.trust_remote_code"
            )
        return True
    return None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def describe(config: PretrainedConfig) -> dict[str, Any]:
    keys = (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
        "max_position_embeddings",
    )
    return {k: getattr(config, k) for k in keys if hasattr(config, k)}
