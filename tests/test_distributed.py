"""Two gloo processes under `accelerate launch` match one process with twice the accumulation."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import pretrain_args
from safetensors.torch import load_file

from llmkit.cli import main
from llmkit.training.logging import read_metrics


def test_two_process_ddp_matches_one_process_with_double_accumulation(
    tmp_path, corpus_file, capsys
):
    cache = tmp_path / "cache"
    assert main(pretrain_args(tmp_path / "warm", corpus_file, cache, "--train.max_steps", "1")) == 0
    common = [
        "--train.max_steps",
        "8",
        "--train.per_device_train_batch_size",
        "4",
        "--train.logging_steps",
        "1",
    ]

    single = tmp_path / "single"
    capsys.readouterr()
    args = pretrain_args(
        single, corpus_file, cache, *common, "--train.gradient_accumulation_steps", "2"
    )
    assert main(args) == 0
    assert "world size 1" in capsys.readouterr().out

    ddp = tmp_path / "ddp"
    # On a CPU machine --multi_gpu plus Accelerator(cpu=True) gives real gloo DDP; --cpu alone
    # would silently start a single process.
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "llmkit",
        *pretrain_args(ddp, corpus_file, cache, *common),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "world size 2" in proc.stdout

    loss_1 = [r["train_loss"] for r in read_metrics(single / "metrics.jsonl") if "train_loss" in r]
    loss_2 = [r["train_loss"] for r in read_metrics(ddp / "metrics.jsonl") if "train_loss" in r]
    assert len(loss_1) == len(loss_2) == 8
    # Same examples per step, same normalisation: only float summation order differs.
    assert max(abs(x - y) for x, y in zip(loss_1, loss_2)) < 1e-5
    val_1 = [r["val_loss"] for r in read_metrics(single / "metrics.jsonl") if "val_loss" in r]
    val_2 = [r["val_loss"] for r in read_metrics(ddp / "metrics.jsonl") if "val_loss" in r]
    assert abs(val_1[-1] - val_2[-1]) < 1e-4
    a, b = load_file(single / "model.safetensors"), load_file(ddp / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
