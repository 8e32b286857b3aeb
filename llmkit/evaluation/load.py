"""Load the model under evaluation: one-line errors for incomplete folders, and a fingerprint.

The fingerprint goes into eval_results.json so a quoted number can be traced to the exact
weights: the sha256 of the safetensors bytes for a folder (for one file, what ``sha256sum
model.safetensors`` prints), the commit for a Hub name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.config import ModelConfig
from llmkit.data.tokenizer import load_tokenizer
from llmkit.errors import LlmkitError
from llmkit.export.int8_kernels import use_fast_int8
from llmkit.models.load import build_model, count_parameters, loading_bar

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name_or_path: str
    fingerprint: str
    parameters: int
    #: torchao int8-dynamic layers whose one-token calls run on fbgemm (llmkit quantize folders)
    fast_int8_layers: int = 0


def load_for_evaluation(
    name_or_path: str,
    *,
    dtype: str = "float32",
    device: str = "auto",
    trust_remote_code: bool = False,
    show_progress: bool = True,
    int8_kernel: str = "auto",
) -> LoadedModel:
    """Model and tokenizer in eval mode on ``device``; safetensors only unless remote code.

    A LoRA adapter folder (``llmkit finetune --peft lora``) loads onto its base model. An int8
    folder of ``llmkit quantize`` decodes on fbgemm on a CPU unless ``int8_kernel="torchao"``.
    """
    from llmkit.models.peft import adapter_base, is_adapter_dir, load_adapter_model

    adapter = is_local(name_or_path) and is_adapter_dir(name_or_path)
    if is_local(name_or_path) and not adapter:
        check_model_folder(Path(name_or_path), trust_remote_code)
    own_tokenizer = not adapter or has_tokenizer(Path(name_or_path))
    tokenizer = load_tokenizer(
        name_or_path if own_tokenizer else adapter_base(name_or_path),
        trust_remote_code=trust_remote_code,
    )
    with loading_bar(show_progress):
        if adapter:
            model = load_adapter_model(name_or_path, tokenizer, trust_remote_code)
        else:
            model_cfg = ModelConfig(
                preset=None, name_or_path=name_or_path, trust_remote_code=trust_remote_code
            )
            model = build_model(model_cfg, tokenizer, seed=0)
    model.to(device=resolve_device(device), dtype=DTYPES[dtype]).eval()
    fast = use_fast_int8(model) if int8_kernel == "auto" and dtype == "float32" else 0
    weights = fingerprint(name_or_path, model)
    if adapter:
        base = adapter_base(name_or_path)
        weights = f"{weights} on {fingerprint(base, model.get_base_model())}"
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name_or_path=name_or_path,
        fingerprint=weights,
        parameters=count_parameters(model),
        fast_int8_layers=fast,
    )


def has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def is_local(name_or_path: str) -> bool:
    return Path(name_or_path).exists() or name_or_path.startswith((".", "/", "~"))


def check_model_folder(path: Path, trust_remote_code: bool = False) -> None:
    """Name the missing piece before transformers fails with a longer, vaguer message."""
    if not path.exists():
        raise LlmkitError(f"model folder {path} not found; check --model (a folder or Hub name)")
    if not path.is_dir():
        raise LlmkitError(f"--model {path} is a file; give the folder save_pretrained wrote")
    if not (path / "config.json").is_file():
        raise LlmkitError(
            f"model folder {path}: no config.json; give a folder written by save_pretrained"
        )
    if not any(path.glob("*.safetensors")):
        pickled = any(path.glob("*.bin")) or any(path.glob("*.pt"))
        if not (pickled and trust_remote_code):
            why = "; only pickle weights (*.bin), not loaded by default" if pickled else ""
            raise LlmkitError(
                f"model folder {path}: no weights (*.safetensors){why}; save the model with "
                "save_pretrained(folder, safe_serialization=True)"
            )
    if not has_tokenizer(path):
        raise LlmkitError(
            f"model folder {path}: no tokenizer (tokenizer.json or tokenizer_config.json); "
            "save it there with tokenizer.save_pretrained(folder)"
        )


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # accelerate launch: this process's GPU
            from accelerate import PartialState

            return PartialState().device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LlmkitError(f"device {device}: no CUDA device is available; use --device cpu")
    return torch.device(device)


def fingerprint(name_or_path: str, model: PreTrainedModel) -> str:
    """sha256 of the weight files in name order for a folder; name@commit for a Hub model.

    For an adapter folder the hash is the adapter's (the caller adds the base model's).
    """
    path = Path(name_or_path)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if files:
        digest = hashlib.sha256()
        for f in files:
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 24):
                    digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"
    commit = getattr(model.config, "_commit_hash", None)
    return f"{name_or_path}@{commit}" if commit else name_or_path
