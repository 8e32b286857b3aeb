"""End-to-end pretraining through the CLI on real text, with a 2-layer model."""

from __future__ import annotations

import json
import shutil

import torch
import yaml
from conftest import pretrain_args
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmkit import config as config_lib
from llmkit.cli import main
from llmkit.config import PretrainConfig
from llmkit.training.logging import read_metrics


def test_pretrain_writes_a_loadable_model_and_learns(tmp_path, corpus_file, capsys):
    out = tmp_path / "run"
    assert (
        main(pretrain_args(out, corpus_file, tmp_path / "cache", "--train.eval_steps", "15")) == 0
    )

    for name in (
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "llmkit_config.yaml",
        "metrics.jsonl",
        "loss.png",
        "README.md",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin")), "weights must be safetensors only"

    records = read_metrics(out / "metrics.jsonl")
    val = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in val] == [0, 15, 30]
    # From an untrained model (ln 512 = 6.24 nats) the loss must fall by at least 0.8 nats.
    assert val[0]["val_loss"] > 6.0
    assert val[-1]["val_loss"] < val[0]["val_loss"] - 0.8
    last = [r for r in records if "train_loss" in r][-1]
    assert last["step"] == 30 and last["tokens_seen"] == 30 * 8 * 64

    # Loads with plain transformers and reproduces the logged validation loss on real text.
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.eos_token and tok.pad_token and tok.bos_token
    ids = tok(corpus_file.read_text()[:2000], return_tensors="pt").input_ids[:, :64]
    with torch.no_grad():
        assert model(ids, labels=ids).loss.item() < val[0]["val_loss"] - 0.5

    # The resolved config repeats the run exactly.
    saved = config_lib.build(PretrainConfig, out / "llmkit_config.yaml", {})
    assert saved.train.max_steps == 30 and saved.data.block_size == 64
    assert yaml.safe_load((out / "llmkit_config.yaml").read_text())["output_dir"] == str(out)

    card = (out / "README.md").read_text()
    assert card.startswith("---") and "library_name: transformers" in card
    assert "validation perplexity" in card

    printed = capsys.readouterr().out
    assert "validation perplexity" in printed and str(out) in printed


def test_second_run_reuses_the_packed_cache(tmp_path, corpus_file, capsys):
    cache = tmp_path / "cache"
    args = pretrain_args(tmp_path / "a", corpus_file, cache, "--train.max_steps", "2")
    assert main(args) == 0
    capsys.readouterr()
    assert main(pretrain_args(tmp_path / "b", corpus_file, cache, "--train.max_steps", "2")) == 0
    assert "(cached)" in capsys.readouterr().out
    assert len(list(cache.glob("packed-*"))) == 1
    manifest = json.loads(next(cache.glob("packed-*/manifest.json")).read_text())
    counts = manifest["counts"]["train"]
    # Packing loses nothing but the tail shorter than one block.
    assert counts["blocks"] * 64 + counts["dropped_tail_tokens"] == counts["tokens"]
    assert counts["dropped_tail_tokens"] < 64


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, corpus_file):
    cache = tmp_path / "cache"
    full = tmp_path / "full"
    args = [
        "--train.save_steps",
        "10",
        "--train.save_total_limit",
        "3",
        "--train.gradient_accumulation_steps",
        "2",
        "--train.max_steps",
        "20",
    ]
    assert main(pretrain_args(full, corpus_file, cache, *args)) == 0
    ckpts = sorted((full / "checkpoints").iterdir())
    assert [c.name for c in ckpts] == ["checkpoint-0000010"]

    # "Interrupt" after step 10: a fresh folder holding only what existed at that moment,
    # plus a half-written checkpoint that must be ignored.
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(ckpts[0], resumed / "checkpoints" / ckpts[0].name)
    (resumed / "checkpoints" / ".tmp-checkpoint-0000015").mkdir()
    shutil.copy(full / "llmkit_config.yaml", resumed)
    metrics = read_metrics(full / "metrics.jsonl")
    (resumed / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in metrics if r["step"] <= 10)
    )
    assert main(pretrain_args(resumed, corpus_file, cache, *args, "--resume")) == 0

    a = load_file(full / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    losses = lambda path: [r["train_loss"] for r in read_metrics(path) if "train_loss" in r]  # noqa: E731
    assert losses(resumed / "metrics.jsonl") == losses(full / "metrics.jsonl")


def test_continued_pretraining_starts_where_the_checkpoint_ended(tmp_path, corpus_file):
    cache = tmp_path / "cache"
    first = tmp_path / "first"
    assert main(pretrain_args(first, corpus_file, cache, "--train.max_steps", "10")) == 0
    second = tmp_path / "second"
    args = pretrain_args(
        second,
        corpus_file,
        cache,
        "--train.max_steps",
        "5",
        "--model.name_or_path",
        str(first),
        "--tokenizer.name_or_path",
        str(first),
    )
    assert main(args) == 0
    end_of_first = [r["val_loss"] for r in read_metrics(first / "metrics.jsonl") if "val_loss" in r]
    start_of_second = [
        r["val_loss"] for r in read_metrics(second / "metrics.jsonl") if "val_loss" in r
    ]
    # Same weights, same validation blocks: the continued run's step-0 loss is the first's last.
    assert abs(start_of_second[0] - end_of_first[-1]) < 1e-5
    assert (
        AutoTokenizer.from_pretrained(second).get_vocab()
        == AutoTokenizer.from_pretrained(first).get_vocab()
    )
