"""Before anything is sent: the folder must load the way its users will load it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmkit.data.tokenizer import load_tokenizer
from llmkit.errors import LlmkitError
from llmkit.models.load import loading_bar
from llmkit.models.peft import adapter_base, is_adapter_dir, load_adapter_model


@dataclass
class ModelFolder:
    path: Path
    adapter: bool  # a LoRA adapter (adapter_config.json) rather than a full model
    base_model: str | None  # an adapter's base model (a full model's is in its run config)


def check_model_folder(folder: str | Path) -> ModelFolder:
    """It is a model (or adapter) folder with safetensors weights, the weights load with
    ``from_pretrained`` and fill every parameter, and the tokenizer loads."""
    path = Path(folder)
    if not path.is_dir():
        raise LlmkitError(f"{path}: no such folder; give the output_dir of an llmkit run")
    adapter = is_adapter_dir(path)
    if not adapter and not (path / "config.json").is_file():
        raise LlmkitError(
            f"{path} is not a model folder (no config.json or adapter_config.json); give the "
            "output_dir of a `llmkit pretrain` or `llmkit finetune` run"
        )
    if not any(path.glob("*.safetensors")):
        raise LlmkitError(
            f"{path}: no *.safetensors weights; only safetensors are pushed (save with "
            "save_pretrained(..., safe_serialization=True))"
        )
    tokenizer = load_tokenizer(str(path))
    if adapter:
        base = adapter_base(path)
        try:
            with loading_bar(False):
                load_adapter_model(path, tokenizer)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise LlmkitError(
                f"{path}: the adapter does not load onto its base {base} ({_first_line(e)})"
            ) from None
        return ModelFolder(path, True, base)
    _load_model(path)
    return ModelFolder(path, False, None)


def _load_model(path: Path) -> None:
    from transformers import AutoModelForCausalLM

    try:
        with loading_bar(False):
            _, info = AutoModelForCausalLM.from_pretrained(
                path, use_safetensors=True, output_loading_info=True, dtype="auto"
            )
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise LlmkitError(f"{path}: the model does not load ({_first_line(e)})") from None
    bad = sorted(info.get("missing_keys", [])) + [str(m) for m in info.get("mismatched_keys", [])]
    if bad:
        raise LlmkitError(
            f"{path}: the weights do not fit config.json ({len(bad)} missing or mismatched, "
            f"e.g. {bad[0]}); save the model again with save_pretrained"
        )


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
