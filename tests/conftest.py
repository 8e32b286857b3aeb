"""Shared fixtures: a tiny tokenizer trained here and a tiny Llama built from a config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llmkit.data.tokenizer import train_tokenizer

# Per-machine measurements (the precision probe) go to a folder of this test session, not to
# ~/.cache/llmkit; subprocesses inherit it.
os.environ.setdefault("LLMKIT_CACHE_DIR", tempfile.mkdtemp(prefix="llmkit-test-cache-"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SHAKESPEARE = SHARED / "text" / "tinyshakespeare.txt"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    return SHAKESPEARE.read_text()


@pytest.fixture(scope="session")
def tiny_tokenizer(shakespeare_text):
    return train_tokenizer([shakespeare_text[:200_000]], vocab_size=512)


def make_tiny_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(cfg).eval()


def check_error(code: int, out: Path, capsys, *expected: str) -> None:
    """Bad input: exit code 2, one line on stderr holding every ``expected`` text, and
    nothing written to ``out``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    for text in expected:
        assert text in err[0], err[0]
    assert not out.exists(), "nothing may be written"


def train_briefly(model: LlamaForCausalLM, tokenizer, text: str, steps: int = 120):
    """A few AdamW steps on random 64-token windows, so outputs depend on the context."""
    ids = torch.tensor(tokenizer(text[:100_000])["input_ids"])
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 65, (16,), generator=gen).tolist()
        batch = torch.stack([ids[s : s + 64] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    model = make_tiny_model(len(tiny_tokenizer))
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.config.bos_token_id = tiny_tokenizer.bos_token_id
    model.config.eos_token_id = tiny_tokenizer.eos_token_id
    return model


@pytest.fixture(scope="session")
def trained_tiny_dir(tmp_path_factory, tiny_tokenizer, shakespeare_text) -> Path:
    """A tiny Llama trained 30 steps, saved with its tokenizer: logits that depend on the
    weights (for checks that a converted model still computes the same)."""
    model = make_tiny_model(len(tiny_tokenizer))
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.config, name, getattr(tiny_tokenizer, name))
    train_briefly(model, tiny_tokenizer, shakespeare_text, steps=30)
    path = tmp_path_factory.mktemp("trained")
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tiny_tokenizer) -> Path:
    """The tiny model and its tokenizer as a saved model folder: a base model to fine-tune."""
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_model.save_pretrained(path, safe_serialization=True)
    tiny_tokenizer.save_pretrained(path)
    return path


def finetune_args(out: Path, model: Path, data: Path | str, *extra: str) -> list[str]:
    """CLI arguments for a fine-tuning run of a few seconds (no validation passes midway)."""
    return [
        "finetune",
        "--output_dir",
        str(out),
        "--model",
        str(model),
        "--data",
        str(data),
        "--task.max_length",
        "192",
        "--train.per_device_train_batch_size",
        "4",
        "--train.max_steps",
        "4",
        "--train.learning_rate",
        "1e-3",
        "--train.progress_bar",
        "false",
        "--train.report_to",
        "none",
        "--train.mixed_precision",  # fixed, not measured: tests compare exact numbers
        "no",
        "--train.torch_compile",
        "false",
        "--eval.every_n_steps",
        "0",
        "--eval.max_examples",
        "4",
        "--eval.test_max_examples",
        "4",
        *extra,
    ]


TINY_MODEL = (
    "{hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, "
    "num_key_value_heads: 4}"
)


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory, shakespeare_text) -> Path:
    """About 120 kB of real text as paragraphs, enough for a few hundred 64-token blocks."""
    path = tmp_path_factory.mktemp("corpus") / "shakespeare.txt"
    path.write_text(shakespeare_text[:120_000])
    return path


def pretrain_args(out: Path, data: Path, cache: Path, *extra: str) -> list[str]:
    """CLI arguments for a pretraining run of a 2-layer model that takes a few seconds."""
    return [
        "pretrain",
        "--output_dir",
        str(out),
        "--data.train_files",
        str(data),
        "--data.cache_dir",
        str(cache),
        "--data.block_size",
        "64",
        "--tokenizer.vocab_size",
        "512",
        "--model.config_overrides",
        TINY_MODEL,
        "--train.per_device_train_batch_size",
        "8",
        "--train.max_steps",
        "30",
        "--train.learning_rate",
        "3e-3",
        "--train.eval_steps",
        "0",
        "--train.eval_max_batches",
        "8",
        "--train.progress_bar",
        "false",
        "--train.report_to",
        "none",
        "--train.mixed_precision",
        "no",
        "--train.torch_compile",
        "false",
        *extra,
    ]
