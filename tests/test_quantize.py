"""`llmkit quantize`: an int8 folder that plain from_pretrained loads, perplexity within 2%."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from conftest import check_error
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmkit.cli import main
from llmkit.evaluation.text_eval import evaluate_text, load_texts

#: the issue's goal: int8 costs at most 2% perplexity
PERPLEXITY_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def trained_dir(trained_tiny_dir) -> Path:
    return trained_tiny_dir


@pytest.fixture(scope="module")
def validation(tmp_path_factory, shakespeare_text) -> Path:
    """Held-out text (after the 100k characters the model trained on)."""
    folder = tmp_path_factory.mktemp("val")
    (folder / "validation.txt").write_text(shakespeare_text[200_000:206_000])
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("method", ["int8-dynamic", "int8-weight"])
def test_quantized_folder_loads_and_keeps_perplexity(tmp_path, trained_dir, validation, method):
    out = tmp_path / method
    args = ["quantize", str(trained_dir), "--method", method, "--out", str(out)]
    assert main([*args, "--data", str(validation)]) == 0

    tok = AutoTokenizer.from_pretrained(out)
    quantized = AutoModelForCausalLM.from_pretrained(out).eval()  # plain transformers
    weight = quantized.model.layers[0].self_attn.q_proj.weight
    assert type(weight).__name__ == "Int8Tensor", "the linear layers are int8"
    original = AutoModelForCausalLM.from_pretrained(trained_dir).eval()
    texts = load_texts([str(validation)], "validation")  # `llmkit evaluate`'s reading
    before = evaluate_text(original, tok, texts).metrics["perplexity"]
    after = evaluate_text(quantized, tok, texts).metrics["perplexity"]
    assert after != before, "the weights were rounded"
    assert abs(after / before - 1) <= PERPLEXITY_TOLERANCE

    report = json.loads((out / "quantize_report.json").read_text())
    assert report["perplexity"] == pytest.approx(after, rel=1e-4)
    assert report["perplexity_original"] == pytest.approx(before, rel=1e-6)
    assert report["size_bytes"] == (out / "model.safetensors").stat().st_size
    assert report["size_bytes"] < (trained_dir / "model.safetensors").stat().st_size
    # int8-dynamic decodes on fbgemm (2 layers x 7 linears + the head), weight-only on torchao
    assert report["fast_int8_layers"] == (15 if method == "int8-dynamic" else 0)
    assert report["head"] == "int8" and type(quantized.lm_head.weight).__name__ == "Int8Tensor"
    assert report["decode_tokens_per_s"] > 0 and report["decode_tokens_per_s_original"] > 0
    mode = stat.S_IMODE((out / "model.safetensors").stat().st_mode)
    assert mode & stat.S_IRGRP, "ordinary permissions, not a private temporary file's"
    assert not list(tmp_path.glob(".*")), "no temporary folder left behind"


def test_unknown_method(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "q"
    code = main(["quantize", str(tiny_model_dir), "--method", "int4", "--out", str(out)])
    check_error(code, out, capsys, "--method 'int4'", "int8-dynamic, int8-weight")


def test_not_a_model_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "q"
    code = main(["quantize", str(tmp_path / "empty"), "--out", str(out)])
    check_error(code, out, capsys, "empty", "not a model folder")


def test_existing_output_needs_overwrite(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "q"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(["quantize", str(tiny_model_dir), "--out", str(out)])
    check_error(code, out / "config.json", capsys, "not empty", "--overwrite")
    code = main(["quantize", str(tiny_model_dir), "--out", str(out), "--overwrite"])
    check_error(code, out / "config.json", capsys, "refusing to delete")
    assert (out / "keep.txt").read_text() == "mine"
