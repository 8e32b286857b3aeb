"""Run folders: refuse to clobber another run, and save models the Hugging Face way."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from llmkit.config import CONFIG_FILE
from llmkit.errors import LlmkitError
from llmkit.permissions import ordinary_modes


def check_output_dir(path: str | Path, overwrite: bool, resuming: bool) -> Path:
    """Fail before any work when the folder holds something we would overwrite."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise LlmkitError(f"output_dir {out} is a file; choose a folder path")
    if out.is_dir() and any(out.iterdir()) and not resuming:
        if not overwrite:
            raise LlmkitError(
                f"output_dir {out} already holds a run; pass --overwrite to replace it, "
                "--resume to continue it, or choose another --output_dir"
            )
        if not (out / CONFIG_FILE).exists():
            raise LlmkitError(
                f"output_dir {out} is not empty and holds no llmkit run; refusing to delete it "
                "even with --overwrite; choose another --output_dir"
            )
    return out


def start_output_dir(out: Path, overwrite: bool, resuming: bool, accelerator: Accelerator) -> None:
    if accelerator.is_main_process:
        if overwrite and not resuming and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()


def save_model(
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
) -> None:
    """``save_pretrained`` folders (safetensors) that load with no llmkit import."""
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        unwrapped.save_pretrained(out, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(out)
        ordinary_modes(out)
    accelerator.wait_for_everyone()


@torch.inference_mode()
def greedy_sample(model, tokenizer, prompt: str, max_new_tokens: int = 40) -> str:
    model.eval()
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)
    out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0], skip_special_tokens=True)
