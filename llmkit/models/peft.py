"""LoRA and QLoRA through ``peft``: wrapping, default target modules, merging.

LoRA trains low-rank updates of chosen linear layers and saves only those (an adapter of a
few MB); ``merge_adapter`` folds them back into the base weights for a standalone model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.pytorch_utils import Conv1D

from llmkit.config import ModelConfig
from llmkit.config.finetune import PeftConfig
from llmkit.errors import ConfigError, LlmkitError
from llmkit.models.load import build_model, loading_bar

_LLAMA = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_NEOX = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
#: model_type -> attention and MLP projections (every linear layer but the output head)
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": _LLAMA,
    "olmo": _LLAMA,
    "smollm3": _LLAMA,
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_bigcode": ("c_attn", "c_proj", "c_fc"),
    "gpt_neox": _NEOX,
    "falcon": _NEOX,
    "bloom": _NEOX,
    "gptj": ("q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"),
    "opt": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
}
ADAPTER_CONFIG = "adapter_config.json"


def check_method(method: str) -> None:
    """QLoRA needs CUDA and bitsandbytes: say so before any work."""
    if method != "qlora":
        return
    missing = [
        what
        for what, ok in (
            ("a CUDA GPU", torch.cuda.is_available()),
            ("the bitsandbytes package", importlib.util.find_spec("bitsandbytes") is not None),
        )
        if not ok
    ]
    if missing:
        raise ConfigError(
            f"peft.method=qlora needs {' and '.join(missing)}; use peft.method=lora "
            "(or pip install bitsandbytes on a GPU machine)"
        )


def load_base_model(
    cfg: ModelConfig,
    method: str,
    tokenizer: PreTrainedTokenizerBase,
    seed: int,
    show_progress: bool = True,
) -> PreTrainedModel:
    """The model to fine-tune: as saved, or quantized to 4 bits for QLoRA."""
    if method != "qlora":
        with loading_bar(show_progress):
            return build_model(cfg, tokenizer, seed=seed)
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        cfg.name_or_path,
        quantization_config=quant,
        dtype=torch.bfloat16,
        device_map={"": torch.cuda.current_device()},
        trust_remote_code=cfg.trust_remote_code,
    )
    return prepare_model_for_kbit_training(model)


def linear_layer_names(model: torch.nn.Module) -> list[str]:
    """Short names of the linear layers LoRA can adapt (the output head excluded)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for full, module in model.named_modules():
        if module is head or not full:
            continue
        if isinstance(module, torch.nn.Linear | Conv1D) or type(module).__name__ == "Linear4bit":
            names.add(full.rsplit(".", 1)[-1])
    return sorted(names)


def target_modules(model: PreTrainedModel, requested: list[str]) -> list[str]:
    """The requested layer names, checked against the model; else the architecture's default."""
    available = linear_layer_names(model)
    if not requested:
        default = DEFAULT_TARGETS.get(getattr(model.config, "model_type", ""), ())
        return [t for t in default if t in available] or available
    for name in requested:
        if name not in available:
            raise ConfigError(
                f"peft.target_modules: {name!r} is not a linear layer of this "
                f"{model.config.model_type} model; its linear layers: {', '.join(available)}"
            )
    return list(requested)


def apply_lora(model: PreTrainedModel, cfg: PeftConfig) -> torch.nn.Module:
    """The model with LoRA adapters on the target layers; only those (and nothing else) train."""
    from peft import LoraConfig, get_peft_model

    targets = target_modules(model, cfg.target_modules)
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        # GPT-2-style Conv1D layers store their weight transposed; peft would fix the flag
        # itself, with a warning on every run.
        fan_in_fan_out=any(
            isinstance(module, Conv1D) and name.rsplit(".", 1)[-1] in targets
            for name, module in model.named_modules()
        ),
    )
    wrapped = get_peft_model(model, lora)
    # A relative base path breaks `llmkit merge` run from another folder.
    base = wrapped.peft_config["default"].base_model_name_or_path
    if base and Path(base).is_dir():
        wrapped.peft_config["default"].base_model_name_or_path = str(Path(base).resolve())
    return wrapped


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model an adapter folder was trained on (from its adapter_config.json)."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    if not path.is_file():
        raise LlmkitError(
            f"{adapter_dir}: no {ADAPTER_CONFIG}; give the output_dir of a "
            "`llmkit finetune --peft lora` run"
        )
    base = json.loads(path.read_text()).get("base_model_name_or_path")
    if not base:
        raise LlmkitError(f"{path}: base_model_name_or_path is empty; set it to the base model")
    return base


def load_adapter_model(
    adapter_dir: str | Path, tokenizer: PreTrainedTokenizerBase, trust_remote_code: bool = False
) -> torch.nn.Module:
    """Base model (safe loading as everywhere) plus the adapter, unmerged."""
    from peft import PeftModel

    base_cfg = ModelConfig(
        preset=None, name_or_path=adapter_base(adapter_dir), trust_remote_code=trust_remote_code
    )
    base = build_model(base_cfg, tokenizer, seed=0)
    return PeftModel.from_pretrained(base, str(adapter_dir)).eval()


def merge_adapter(model: torch.nn.Module) -> PreTrainedModel:
    """Fold the LoRA updates into the base weights: a plain transformers model."""
    return model.merge_and_unload()
