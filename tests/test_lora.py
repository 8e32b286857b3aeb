"""LoRA: adapters only train and only they are saved; a merged model equals base + adapter."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from conftest import check_error, finetune_args, make_tiny_model
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from llmkit.cli import main
from llmkit.config.finetune import PeftConfig
from llmkit.models.peft import apply_lora, linear_layer_names, target_modules

QA_TRAIN = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa" / "train.jsonl"
LLAMA_LINEAR = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
#: merged weights W + (alpha/r) B A against the unmerged sum in fp32: rounding only
MERGE_ATOL = 1e-5


@pytest.fixture(scope="module")
def small_qa(tmp_path_factory) -> Path:
    """48 records of the embedded QA set: enough for a few LoRA steps."""
    path = tmp_path_factory.mktemp("qa") / "train.jsonl"
    path.write_text("".join(QA_TRAIN.read_text().splitlines(keepends=True)[:48]))
    return path


def test_lora_run_saves_an_adapter_that_merges_exactly(tmp_path, tiny_model_dir, small_qa):
    out, merged = tmp_path / "lora", tmp_path / "merged"
    args = ["--peft", "lora", "--peft.r", "4", "--peft.alpha", "8", "--peft.dropout", "0"]
    args += ["--train.learning_rate", "2e-2", "--train.max_steps", "6"]
    assert main(finetune_args(out, tiny_model_dir, small_qa, *args)) == 0

    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "loss.png"):
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists(), "a LoRA run saves the adapter only"
    adapter = load_file(out / "adapter_model.safetensors")
    hidden, inter = 64, 128
    shapes = {"q_proj": (hidden, hidden), "k_proj": (hidden, hidden), "v_proj": (hidden, hidden)}
    shapes |= {"o_proj": (hidden, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter)}
    shapes |= {"down_proj": (inter, hidden)}  # (in, out) of each adapted linear layer
    assert len(adapter) == 2 * 2 * len(shapes)  # A and B, per layer, per module
    for key, tensor in adapter.items():
        module = key.split(".lora_")[0].rsplit(".", 1)[-1]
        fan_in, fan_out = shapes[module]
        expected = (4, fan_in) if ".lora_A." in key else (fan_out, 4)
        assert tuple(tensor.shape) == expected, key
    expected_trainable = 2 * sum(4 * (i + o) for i, o in shapes.values())
    results = json.loads((out / "finetune_results.json").read_text())
    assert results["trainable_parameters"] == expected_trainable == 8_704
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    assert sorted(config["target_modules"]) == LLAMA_LINEAR
    assert "LoRA, rank 4, alpha 8" in (out / "README.md").read_text()

    assert main(["merge", str(out), "--out", str(merged)]) == 0
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()
    assert not (merged / "adapter_config.json").exists()
    assert not [k for k in load_file(merged / "model.safetensors") if "lora" in k]

    tok = AutoTokenizer.from_pretrained(merged)
    ids = tok(
        "Context: Tom lives in Paris.\nQuestion: Where does Tom live?\nAnswer:", return_tensors="pt"
    ).input_ids
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        base_logits = base(ids).logits
        with_adapter = PeftModel.from_pretrained(base, out).eval()
        adapter_logits = with_adapter(ids).logits
        merged_logits = AutoModelForCausalLM.from_pretrained(merged).eval()(ids).logits
    assert (adapter_logits - base_logits).abs().max() > 1e-2, "the adapter must change the model"
    assert (merged_logits - adapter_logits).abs().max() <= MERGE_ATOL


def test_default_target_modules_per_architecture():
    llama = make_tiny_model(512)
    assert linear_layer_names(llama) == LLAMA_LINEAR  # lm_head is not a target
    assert target_modules(llama, []) == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=512))
    assert target_modules(gpt2, []) == ["c_attn", "c_proj", "c_fc"]  # Conv1D layers
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*fan_in_fan_out")  # wrong for Conv1D
        wrapped = apply_lora(gpt2, PeftConfig(method="lora", r=2))
    assert wrapped.peft_config["default"].fan_in_fan_out
    assert (
        not apply_lora(llama, PeftConfig(method="lora", r=2)).peft_config["default"].fan_in_fan_out
    )
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert wrapped(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 512)


def test_unknown_target_module_lists_the_linear_layers(tmp_path, tiny_model_dir, small_qa, capsys):
    out = tmp_path / "out"
    args = ["--peft", "lora", "--peft.target_modules", "q_proj,attn"]
    code = main(finetune_args(out, tiny_model_dir, small_qa, *args))
    check_error(
        code,
        out,
        capsys,
        "peft.target_modules: 'attn' is not a linear layer of this llama model",
        "its linear layers: " + ", ".join(LLAMA_LINEAR),
    )


def test_qlora_without_gpu_or_bitsandbytes(tmp_path, tiny_model_dir, small_qa, capsys):
    out = tmp_path / "out"
    code = main(finetune_args(out, tiny_model_dir, small_qa, "--peft", "qlora"))
    check_error(code, out, capsys, "peft.method=qlora needs a CUDA GPU", "use peft.method=lora")


def test_merge_needs_an_adapter_folder(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "merged"
    code = main(["merge", str(tiny_model_dir), "--out", str(out)])
    check_error(code, out, capsys, f"{tiny_model_dir}: no adapter_config.json")
