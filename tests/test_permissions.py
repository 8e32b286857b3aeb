"""Every file llmkit writes has the mode the user's umask gives an ordinary file.

safetensors writes weights through a private temporary file (mode 0600); on a shared
filesystem nobody else could load such a model. Checked under two umasks that are not the
usual 022, for pretraining with checkpoints, a LoRA fine-tune keeping its best pass, a merge
and a prepared data folder.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import finetune_args, pretrain_args

from llmkit.cli import main

QA_TRAIN = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa" / "train.jsonl"


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def wrong_modes(root: Path, mask: int) -> list[str]:
    """Everything under ``root`` whose permission bits differ from an ordinary file's or
    folder's under ``mask``."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        if mode != expected:
            wrong.append(f"{path.relative_to(root)}: {oct(mode)} != {oct(expected)}")
    return wrong


@pytest.mark.parametrize("mask", [0o027, 0o002])
def test_pretraining_run_and_checkpoints(tmp_path, corpus_file, mask):
    out, cache = tmp_path / "run", tmp_path / "cache"
    with umask(mask):
        code = main(pretrain_args(out, corpus_file, cache, "--train.save_steps", "10"))
    assert code == 0
    weights = [p.relative_to(out).as_posix() for p in out.rglob("*.safetensors")]
    assert "model.safetensors" in weights and any(w.startswith("checkpoints/") for w in weights)
    assert wrong_modes(out, mask) == []
    assert wrong_modes(cache, mask) == []  # the packed-data cache is a staged folder too


def test_lora_fine_tune_best_pass_and_merge(tmp_path, tiny_model_dir):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(QA_TRAIN.read_text().splitlines(keepends=True)[:48]))
    out, merged, mask = tmp_path / "lora", tmp_path / "merged", 0o027
    best = ["--eval.metric_for_best_model", "loss", "--eval.every_n_steps", "2"]
    with umask(mask):
        assert main(finetune_args(out, tiny_model_dir, data, "--peft", "lora", *best)) == 0
        assert main(["merge", str(out), "--out", str(merged)]) == 0
    assert (out / "adapter_model.safetensors").is_file()
    assert (merged / "model.safetensors").is_file()
    assert wrong_modes(out, mask) == []
    assert wrong_modes(merged, mask) == []


def test_prepared_data_folder(tmp_path, corpus_file):
    out, mask = tmp_path / "prepared", 0o002
    args = ["data", "prepare", "--output_dir", str(out), "--data.train_files", str(corpus_file)]
    args += ["--tokenizer.vocab_size", "512", "--data.block_size", "64"]
    with umask(mask):
        assert main(args) == 0
    assert any(out.rglob("*.bin")) or any(out.rglob("*.npy")) or any(out.iterdir())
    assert wrong_modes(out, mask) == []
