"""`llmkit export`: a GGUF file that transformers' GGUF reader loads back to the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import check_error
from gguf import GGUFReader
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from llmkit.cli import main
from llmkit.export.compare import PROMPTS
from llmkit.export.gguf_check import TOLERANCE
from llmkit.tasks.instruction import DEFAULT_CHAT_TEMPLATE

TEXTS = [*PROMPTS, "  leading spaces\n\n\ttabs and 1234567890", "ROMEO:\nBut soft! what light?"]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, trained_tiny_dir) -> Path:
    """conftest's briefly trained tiny Llama with a chat template added."""
    path = tmp_path_factory.mktemp("trained-chat") / "model"
    shutil.copytree(trained_tiny_dir, path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    tok.save_pretrained(path)
    return path


def _export(source: Path, out: Path, dtype: str) -> int:
    return main(["export", str(source), "--dtype", dtype, "--out", str(out)])


@torch.inference_mode()
def _logits(model, tokenizer) -> list[torch.Tensor]:
    return [model(**tokenizer(t, return_tensors="pt")).logits[0] for t in TEXTS]


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def test_f32_round_trip_equal_logits_and_token_ids(tmp_path, trained_dir):
    out = tmp_path / "model.gguf"
    assert _export(trained_dir, out, "f32") == 0

    original = AutoModelForCausalLM.from_pretrained(trained_dir).eval()
    tok = AutoTokenizer.from_pretrained(trained_dir)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name).eval()
    gguf_tok = AutoTokenizer.from_pretrained(tmp_path, gguf_file=out.name)
    assert _max_diff(_logits(original, tok), _logits(loaded, tok)) <= 1e-5
    assert [gguf_tok(t)["input_ids"] for t in TEXTS] == [tok(t)["input_ids"] for t in TEXTS]

    report = json.loads(out.with_suffix(".check.json").read_text())
    assert report["passed"] and report["token_ids_equal"] and report["max_abs_diff"] <= 1e-5
    assert report["tokens_equal"] and report["merges_equal"] and report["special_ids_equal"]

    reader = GGUFReader(str(out))
    field = reader.get_field
    assert field("general.architecture").contents() == "llama"
    assert field("llama.context_length").contents() == original.config.max_position_embeddings
    assert field("tokenizer.chat_template").contents() == DEFAULT_CHAT_TEMPLATE
    assert field("tokenizer.ggml.eos_token_id").contents() == tok.eos_token_id
    tokens = field("tokenizer.ggml.tokens").contents()
    assert len(tokens) == len(tok) and tokens[tok.eos_token_id] == tok.eos_token
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"

    modelfile = out.with_suffix(".Modelfile").read_text()
    assert modelfile.startswith("FROM ./model.gguf\n")
    # the chat template's single-turn text around the prompt, with and without a system prompt
    template = (
        "{{ if .System }}<|system|>\n{{ .System }}\n<|user|>\n{{ else }}<|user|>\n{{ end }}"
        "{{ .Prompt }}\n<|assistant|>\n{{ .Response }}"
    )
    assert f'TEMPLATE """{template}"""' in modelfile
    assert 'PARAMETER stop "<|eos|>"' in modelfile


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["q8_0", "f16"])
def test_reduced_precision_within_tolerance(tmp_path, trained_dir, dtype):
    out = tmp_path / f"model-{dtype}.gguf"
    assert _export(trained_dir, out, dtype) == 0
    original = AutoModelForCausalLM.from_pretrained(trained_dir).eval()
    tok = AutoTokenizer.from_pretrained(trained_dir)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name).eval()
    reference = _logits(original, tok)
    diff = _max_diff(reference, _logits(loaded, tok))
    scale = max(x.abs().max().item() for x in reference)
    assert 0 < diff / scale <= TOLERANCE[dtype], "rounded, but within the stated tolerance"
    weights = sum(p.numel() for p in original.parameters())
    assert out.stat().st_size < weights * (2.2 if dtype == "f16" else 1.3)
    report = json.loads(out.with_suffix(".check.json").read_text())
    assert report["passed"] and report["dtype"] == dtype and report["token_ids_equal"]


def test_adapter_folder_is_merged_before_export(tmp_path, tiny_model_dir, tiny_tokenizer):
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    base_logits = _logits(base, tiny_tokenizer)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    peft_model = get_peft_model(base, lora)
    torch.manual_seed(1)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.2)  # a trained adapter: B is no longer zero
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    tiny_tokenizer.save_pretrained(adapter)
    merged_logits = _logits(peft_model.merge_and_unload().eval(), tiny_tokenizer)

    out = tmp_path / "gguf" / "adapter.gguf"
    assert _export(adapter, out, "f32") == 0
    loaded = AutoModelForCausalLM.from_pretrained(out.parent, gguf_file=out.name).eval()
    exported = _logits(loaded, tiny_tokenizer)
    assert _max_diff(exported, merged_logits) <= 1e-5
    assert _max_diff(exported, base_logits) > 1e-2, "the adapter's update is in the file"
    assert "merged into" in json.loads(out.with_suffix(".check.json").read_text())["source"]


def test_unsupported_dtype(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "m.gguf"
    code = _export(tiny_model_dir, out, "q4_k")
    check_error(code, out, capsys, "--dtype 'q4_k'", "f32, f16, bf16, q8_0")


def test_unsupported_architecture(tmp_path, tiny_tokenizer, capsys):
    gpt2 = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tiny_tokenizer), n_embd=32, n_layer=1, n_head=2)
    )
    source = tmp_path / "gpt2"
    gpt2.save_pretrained(source)
    tiny_tokenizer.save_pretrained(source)
    capsys.readouterr()
    out = tmp_path / "m.gguf"
    check_error(_export(source, out, "f16"), out, capsys, "model_type 'gpt2'", "supported: llama")


def test_folder_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    out = tmp_path / "m.gguf"
    check_error(_export(tmp_path / "notes", out, "f16"), out, capsys, "notes", "not a model folder")


def test_existing_output_needs_overwrite(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "m.gguf"
    out.write_text("an older file")
    err_out = tmp_path / "m.check.json"
    check_error(
        _export(tiny_model_dir, out, "f16"), err_out, capsys, "m.gguf exists", "--overwrite"
    )
    assert out.read_text() == "an older file"
