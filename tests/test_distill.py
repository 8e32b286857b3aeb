"""llmkit distill: the loss, the teacher cache, and a student that follows its teacher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import check_error, make_tiny_model, train_briefly

from llmkit import config as config_lib
from llmkit.cli import main
from llmkit.config.distill import DistillConfig
from llmkit.data.pack import BlockDataset, PackedSplit
from llmkit.data.teacher_cache import CachedTeacherDataset, build_teacher_cache, cache_folder
from llmkit.training.distill import (
    distill_loss_fn,
    kl_full,
    kl_topk,
    shifted,
    teacher_cache_fn,
    teacher_topk,
)

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
STUDENT = (
    "{hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, "
    "num_key_value_heads: 2}"
)


def _ids(tok, model):
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.config, name, getattr(tok, name))
    return model


@pytest.fixture(scope="module")
def teacher(tiny_tokenizer, shakespeare_text):
    model = _ids(tiny_tokenizer, make_tiny_model(len(tiny_tokenizer)))
    return train_briefly(model, tiny_tokenizer, shakespeare_text, 80)


@pytest.fixture(scope="module")
def teacher_dir(teacher, tiny_tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher")
    teacher.save_pretrained(path, safe_serialization=True)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def packed(tiny_tokenizer, shakespeare_text, tmp_path_factory):
    """A packed split of real text (the layout `llmkit data prepare` writes)."""
    folder = tmp_path_factory.mktemp("packed")
    ids = np.array(tiny_tokenizer(shakespeare_text[:20_000])["input_ids"], dtype=np.uint16)
    blocks = ids[: len(ids) // 32 * 32]
    (folder / "train.bin").write_bytes(blocks.tobytes())
    (folder / "manifest.json").write_text('{"block_size": 32}')
    return folder, PackedSplit(folder / "train.bin", len(blocks) // 32, 32, "uint16")


def _batch(split, n=6):
    data = BlockDataset(split)
    return torch.utils.data.default_collate([data[i] for i in range(n)])


def test_top_k_over_the_whole_vocabulary_is_the_full_kl(teacher, packed):
    batch = _batch(packed[1])
    student = make_tiny_model(teacher.config.vocab_size, seed=3)
    s, mask = shifted(student(input_ids=batch["input_ids"]).logits, batch["labels"])
    t = shifted(teacher(input_ids=batch["input_ids"]).logits, batch["labels"])[0]
    full = kl_full(s, t, mask, 2.0)
    logp, idx = teacher_topk(t, teacher.config.vocab_size, 2.0)
    assert kl_topk(s, logp, idx, mask, 2.0).item() == pytest.approx(full.item(), rel=1e-5)
    few = kl_topk(s, *teacher_topk(t, 8, 2.0), mask, 2.0).item()
    assert few != pytest.approx(full.item(), rel=1e-3) and few > 0  # the tail bucket is coarser


def test_without_kl_the_loss_is_the_models_own_loss(teacher, packed):
    """alpha = 0 is exactly the loop's cross-entropy, with its global-token normalisation."""
    batch = _batch(packed[1])
    student = make_tiny_model(teacher.config.vocab_size, seed=3)
    n = torch.tensor(1000)
    ours = distill_loss_fn(0.0, 2.0, teacher=teacher)(student, dict(batch), n)
    theirs = student(**batch, num_items_in_batch=n).loss
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


def test_cached_and_live_teacher_give_the_same_loss(teacher, packed, tmp_path):
    folder, split = packed
    k, temp, vocab = 16, 2.0, teacher.config.vocab_size
    where = cache_folder(folder, "sha256:abc", k, temp)
    assert where != cache_folder(folder, "sha256:abd", k, temp)  # keyed by the teacher
    cache = build_teacher_cache(
        where,
        {"train": split},
        teacher_cache_fn(teacher, k, temp, vocab),
        k=k,
        vocab_size=vocab,
        batch_size=4,
        show_progress=False,
    )
    data = CachedTeacherDataset(BlockDataset(split), cache)
    batch = torch.utils.data.default_collate([data[i] for i in (0, 3, 5, 7)])
    student = make_tiny_model(vocab, seed=4)
    n = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()))
    cached = distill_loss_fn(0.7, temp)(student, dict(batch), n)
    plain = {k2: batch[k2] for k2 in ("input_ids", "labels")}
    live = distill_loss_fn(0.7, temp, teacher=teacher, topk=k)(student, plain, n)
    assert cached.item() == pytest.approx(live.item(), abs=1e-5)
    assert (
        build_teacher_cache(  # complete: read back, not recomputed
            where, {"train": split}, None, k=k, vocab_size=vocab, batch_size=4
        ).folder
        == where
    )


def _distill(out, teacher_dir, corpus, cache, alpha, *extra):
    return [
        "distill",
        "--teacher",
        str(teacher_dir),
        "--output_dir",
        str(out),
        "--data.train_files",
        str(corpus),
        "--data.cache_dir",
        str(cache),
        "--data.block_size",
        "64",
        "--model.config_overrides",
        STUDENT,
        "--distill.alpha",
        str(alpha),
        "--distill.temperature",
        "1.0",
        "--train.per_device_train_batch_size",
        "8",
        "--train.max_steps",
        "40",
        "--train.learning_rate",
        "3e-3",
        "--train.eval_steps",
        "0",
        "--train.eval_max_batches",
        "6",
        "--train.progress_bar",
        "false",
        "--train.report_to",
        "none",
        *extra,
    ]


@pytest.mark.slow
def test_distilled_student_is_closer_to_its_teacher_than_a_ce_student(
    teacher_dir, corpus_file, tmp_path, capsys
):
    from llmkit.cli import build_parser, config_from_args
    from llmkit.pipelines.distill import run

    results = {}
    for name, alpha, extra in (
        ("kd", 1.0, ()),
        ("ce", 0.0, ()),
        ("cached", 1.0, ("--distill.cache_topk", "32")),
    ):
        args = build_parser().parse_args(
            _distill(tmp_path / name, teacher_dir, corpus_file, tmp_path / "c", alpha, *extra)
        )
        cfg = config_from_args(args)
        results[name] = run(cfg)
    kd, ce, cached = (results[n].kl_after for n in ("kd", "ce", "cached"))
    before = results["kd"].kl_before
    assert kd < before and ce < before
    assert kd < 0.9 * ce, (kd, ce)  # at least 10% lower KL for the same 40 steps
    assert cached < 0.95 * ce, (cached, ce)  # top-32 of 512 tokens: at least 5% lower
    assert results["cached"].cache is not None and results["cached"].cache.parent.name.startswith(
        "packed-"
    )
    card = (tmp_path / "kd" / "README.md").read_text()
    assert "KL(teacher || student)" in card and str(teacher_dir) in card
    assert (tmp_path / "kd" / "model.safetensors").is_file()


def test_draft_recipe_parses_and_says_how_to_run_it():
    path = RECIPES / "distill" / "draft.yaml"
    assert path.read_text().startswith("# run: llmkit distill --recipe recipes/distill/draft.yaml")
    cfg = config_lib.build(DistillConfig, path, {})
    assert cfg.teacher == "runs/pretrain-tiny" and 0 < cfg.distill.alpha <= 1


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--teacher", "no/such/teacher/"], "no/such/teacher"),
        (["--distill.alpha", "1.5"], "distill.alpha must be in [0, 1]"),
        (["--model.name_or_path", "OTHER", "--model.preset", "none"], "student vocabulary 600"),
    ],
)
def test_bad_distill_input_is_one_line(
    extra, expected, teacher_dir, corpus_file, tmp_path, capsys, shakespeare_text
):
    from llmkit.data.tokenizer import train_tokenizer

    if "OTHER" in extra:
        other = train_tokenizer([shakespeare_text[:50_000]], vocab_size=600)
        folder = tmp_path / "other"
        _ids(other, make_tiny_model(len(other))).save_pretrained(folder)
        other.save_pretrained(folder)
        capsys.readouterr()
        extra = [str(folder) if e == "OTHER" else e for e in extra]
    out = tmp_path / "out"
    args = _distill(out, teacher_dir, corpus_file, tmp_path / "c", 0.5)
    check_error(main(args + extra), out, capsys, expected)


def test_a_distill_recipe_checks_its_hub_section_before_any_work(
    teacher_dir, corpus_file, tmp_path, capsys
):
    """`hub.push` works in distill recipes as in pretrain and finetune ones (the same
    push at the end of the run), and a bad section fails before the teacher loads."""
    out = tmp_path / "student"
    args = _distill(out, teacher_dir, corpus_file, tmp_path / "c", 1.0, "--hub.push", "true")
    check_error(main(args), out, capsys, "hub.repo_id")
    check_error(main([*args, "--hub.repo_id", "nons"]), out, capsys, "hub.repo_id 'nons'")
