"""Load a model for inspection and capture its attention weights.

transformers' sdpa and flash kernels return no attention weights (and do not fall back), so
capture switches the model to the eager implementation for the forward pass only and back
afterwards: training and generation keep their fast kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.config import ModelConfig
from llmkit.data.tokenizer import load_tokenizer
from llmkit.errors import LlmkitError
from llmkit.models.load import build_model, loading_bar, max_positions
from llmkit.models.peft import adapter_base, is_adapter_dir, load_adapter_model


@dataclass
class Inspected:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name_or_path: str

    @property
    def layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def heads(self) -> int:
        return int(self.model.config.num_attention_heads)

    @property
    def positions(self) -> int | None:
        return max_positions(self.model.config)


def load_model(name_or_path: str, trust_remote_code: bool = False) -> Inspected:
    """A saved folder (safetensors only unless remote code), a LoRA run, or a Hub name."""
    path = Path(name_or_path)
    local = path.exists() or name_or_path.startswith((".", "/", "~"))
    adapter = local and is_adapter_dir(path)
    if local and not adapter:
        if not path.is_dir() or not (path / "config.json").is_file():
            raise LlmkitError(
                f"--model {name_or_path}: not a model folder (no config.json); give the "
                "output_dir of `llmkit pretrain`/`finetune` or a Hub name"
            )
        if not trust_remote_code and not any(path.glob("*.safetensors")):
            raise LlmkitError(
                f"--model {name_or_path}: no *.safetensors weights in the folder; save it with "
                "save_pretrained(..., safe_serialization=True)"
            )
    tokenizer_from = name_or_path
    if adapter and not (path / "tokenizer_config.json").exists():
        tokenizer_from = adapter_base(path)
    tokenizer = load_tokenizer(tokenizer_from, trust_remote_code)
    with loading_bar(False):
        if adapter:
            model = load_adapter_model(path, tokenizer, trust_remote_code)
        else:
            cfg = ModelConfig(
                preset=None, name_or_path=name_or_path, trust_remote_code=trust_remote_code
            )
            model = build_model(cfg, tokenizer, seed=0)
    return Inspected(model.eval(), tokenizer, name_or_path)


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """The eager implementation (the one that returns weights) for the duration only."""
    before = model.config._attn_implementation
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if before != "eager":
            model.set_attn_implementation(before)


@torch.inference_mode()
def capture(model: PreTrainedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Attention weights ``(batch, layers, heads, query, key)`` as float32 on the CPU."""
    device = next(model.parameters()).device
    with eager_attention(model):
        out = model(input_ids=input_ids.to(device), output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise LlmkitError(
            f"{type(model).__name__} returned no attention weights even with eager attention; "
            "this architecture cannot be inspected"
        )
    return torch.stack([a.float().cpu() for a in out.attentions], dim=1)


def encode_text(inspected: Inspected, text: str) -> list[int]:
    """Token ids of ``text`` as the tokenizer makes them, checked to fit the positions."""
    if not text.strip():
        raise LlmkitError("the text to inspect is empty; give --text, --file or --task")
    ids = inspected.tokenizer(text)["input_ids"]
    limit = inspected.positions
    if limit is not None and len(ids) > limit:
        raise LlmkitError(
            f"the text is {len(ids)} tokens, longer than the model's {limit} positions; "
            "shorten --text/--file"
        )
    return ids


def token_labels(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> list[str]:
    """Each token as the text it stands for (spaces and newlines made visible)."""
    labels = []
    for i in ids:
        if i in tokenizer.all_special_ids:
            labels.append(tokenizer.convert_ids_to_tokens(i))
            continue
        piece = tokenizer.decode([i], clean_up_tokenization_spaces=False)
        labels.append(piece.replace(" ", "\u2423").replace("\n", "\u21b5") or "\u2205")
    return labels


def check_selection(inspected: Inspected, layers: list[int], heads: list[int]) -> None:
    """Out-of-range --layer/--head, said with the model's own counts."""
    for flag, values, count in (
        ("--layer", layers, inspected.layers),
        ("--head", heads, inspected.heads),
    ):
        for v in values:
            if not 0 <= v < count:
                raise LlmkitError(
                    f"{flag} {v} is out of range: {inspected.name_or_path} has {count} "
                    f"{flag[2:]}s (0-{count - 1})"
                )
