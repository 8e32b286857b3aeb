"""Two gloo processes under `accelerate launch` match one process with twice the accumulation."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import finetune_args, make_tiny_model, pretrain_args, train_briefly
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmkit.cli import main
from llmkit.evaluation.task_eval import generation_settings
from llmkit.generation.batched import generate_texts
from llmkit.tasks import get_task
from llmkit.tasks.data import load_task_records
from llmkit.training.logging import read_metrics

QA = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa"


def free_port() -> int:
    """A port nothing listens on now: accelerate's fixed default (29500) clashes with any
    other run on a shared machine, or with a previous launch's socket still closing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(llmkit_args: list[str]) -> list[str]:
    """`accelerate launch` of two gloo processes. On a CPU machine --multi_gpu plus
    Accelerator(cpu=True) gives real DDP; --cpu alone would silently start one process."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--main_process_port",
        str(free_port()),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "llmkit",
        *llmkit_args,
    ]


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
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = launch_two_processes(pretrain_args(ddp, corpus_file, cache, *common))
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


def test_two_process_fine_tuning_shares_generation_and_keeps_every_answer_in_order(
    tmp_path, tiny_tokenizer, shakespeare_text
):
    """Each process decodes part of the validation and test prompts; the gathered answers
    are those one process gives with the saved weights, for every record, in file order."""
    # Briefly trained, so greedy answers do not hinge on float noise between near-equal logits.
    base = tmp_path / "base"
    model = train_briefly(make_tiny_model(len(tiny_tokenizer)), tiny_tokenizer, shakespeare_text)
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.config, name, getattr(tiny_tokenizer, name))
    model.save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    data = tmp_path / "qa"
    data.mkdir()
    for split, n in (("train", 32), ("validation", 5), ("test", 7)):  # odd: unequal shares
        lines = (QA / f"{split}.jsonl").read_text().splitlines(keepends=True)[:n]
        (data / f"{split}.jsonl").write_text("".join(lines))
    out = tmp_path / "ddp"
    args = finetune_args(out, base, data, "--eval.every_n_steps", "2")
    args += ["--eval.max_examples", "5", "--eval.test_max_examples", "7"]
    # A learning rate this high makes the untrained pass (step 0) the best, so the saved model
    # must be the base model again.
    args += ["--eval.metric_for_best_model", "loss", "--train.learning_rate", "0.1"]
    args += ["--train.lr_scheduler_type", "constant", "--train.warmup_ratio", "0"]
    # Eight tokens whatever they are, so that the answers compared below are not all empty.
    generation = "{max_new_tokens: 8, min_new_tokens: 8, stop_strings: []}"
    args += ["--eval.generation", generation]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = launch_two_processes(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "world size 2" in proc.stdout

    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    test = load_task_records(get_task("qa"), [str(data)], "test")
    assert [r["id"] for r in rows] == [r["id"] for r in test]
    task, settings = get_task("qa"), yaml.safe_load(generation)
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompts = [r["prompt"] for r in rows]  # the test records as fitted to the prompt budget
    alone = generate_texts(model, tokenizer, prompts, **generation_settings(task, settings))
    assert all(r["prediction"] for r in rows)
    assert [r["prediction"] for r in rows] == [task.postprocess(a) for a in alone]
    results = json.loads((out / "finetune_results.json").read_text())
    after = results["test"]["after"]
    f1 = [r["scores"]["f1"] for r in rows]
    assert after["f1"] == pytest.approx(sum(f1) / len(f1))
    passes = [r for r in read_metrics(out / "metrics.jsonl") if "val_f1" in r]
    assert [r["step"] for r in passes] == [0, 2, 4]
    best = min(passes, key=lambda r: r["val_loss"])
    assert best["step"] == 0, "this setting must make the untrained pass the best"
    assert results["best"] == {"metric": "val_loss", "value": pytest.approx(best["val_loss"])}
    restored = model.state_dict()
    assert all(
        torch.equal(restored[k], v) for k, v in load_file(base / "model.safetensors").items()
    )
