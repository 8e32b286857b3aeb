"""Atomic checkpoints and resuming.

A checkpoint is written by ``accelerator.save_state`` (model, optimizer, RNG of every process)
into a hidden temporary folder that is renamed into place only when complete, so a crash
mid-save never leaves a ``checkpoint-*`` that later loads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator

from llmkit.errors import LlmkitError
from llmkit.permissions import ordinary_modes

STATE = "trainer_state.json"
PATTERN = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_dir(output_dir: Path) -> Path:
    return output_dir / "checkpoints"


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    folder = checkpoint_dir(output_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if PATTERN.match(p.name) and (p / STATE).exists()]
    return sorted(found, key=lambda p: int(PATTERN.match(p.name).group(1)))


def save_checkpoint(
    accelerator: Accelerator, output_dir: Path, step: int, state: dict, keep: int
) -> Path:
    folder = checkpoint_dir(output_dir)
    final = folder / f"checkpoint-{step:07d}"
    tmp = folder / f".tmp-checkpoint-{step:07d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE).write_text(json.dumps({**state, "step": step}, indent=2))
        ordinary_modes(folder)  # the weights inside were written 0600
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def find_resume_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """``no``: none; ``auto``: the newest complete checkpoint, if any; else an explicit path."""
    if resume == "no":
        return None
    if resume == "auto":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE).exists():
        raise LlmkitError(
            f"train.resume: {path} is not a complete checkpoint (no {STATE}); "
            "use 'auto' or a checkpoints/checkpoint-* folder"
        )
    return path


def load_checkpoint(accelerator: Accelerator, path: Path) -> dict:
    accelerator.load_state(str(path))
    return json.loads((path / STATE).read_text())
