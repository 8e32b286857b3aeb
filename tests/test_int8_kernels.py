"""fbgemm for the one-token calls of torchao int8-dynamic layers: same weights, same answers."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tiny_model
from torch.nn import Parameter
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

from llmkit.cli import main
from llmkit.evaluation.load import load_for_evaluation
from llmkit.export.int8_kernels import Int8DynamicLinear, SharedCall, has_vnni, use_fast_int8
from llmkit.export.quantize import head_precision, load_quantized


def int8_dynamic_linear(in_features: int, out_features: int) -> torch.nn.Linear:
    torch.manual_seed(0)
    holder = torch.nn.Sequential(torch.nn.Linear(in_features, out_features))
    quantize_(holder, Int8DynamicActivationInt8WeightConfig())
    return holder[0]


@torch.inference_mode()
def test_a_one_token_call_is_the_int8_product_of_torchaos_weights():
    layer = int8_dynamic_linear(64, 96)
    fast = Int8DynamicLinear(layer)
    x = torch.randn(1, 1, 64)
    # independently: torch's own dynamic uint8 quantization of x times torchao's int8 weights
    weight = layer.weight.qdata.float() * layer.weight.scale.reshape(-1, 1)
    xq = torch.quantize_per_tensor_dynamic(x, torch.quint8, reduce_range=not has_vnni())
    expected = xq.dequantize() @ weight.T + layer.bias
    got = fast(x)
    assert got.shape == (1, 1, 96)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * expected.abs().max().item())
    # and it approximates the float layer as closely as torchao's own kernel does
    exact = x @ weight.T + layer.bias
    scale = exact.abs().max()
    assert (got - exact).abs().max() / scale < 2e-2
    assert (layer(x) - exact).abs().max() / scale < 2e-2


@torch.inference_mode()
def test_calls_with_several_tokens_stay_on_torchaos_kernel():
    """Per-call activation scales would be coarse across a prompt: torchao's per-token path."""
    layer = int8_dynamic_linear(64, 96)
    fast = Int8DynamicLinear(layer)
    for shape in [(1, 7, 64), (3, 1, 64)]:
        x = torch.randn(*shape)
        assert torch.equal(fast(x), layer(x))


def test_only_int8_dynamic_layers_are_swapped(trained_tiny_dir):
    dynamic = load_quantized(trained_tiny_dir, "int8-dynamic")
    linears = sum(isinstance(m, torch.nn.Linear) for m in dynamic.model.layers.modules())
    assert linears == 14  # 2 layers x (4 attention + 3 MLP)
    assert use_fast_int8(dynamic) == linears + 1, "and the output head"
    assert isinstance(dynamic.model.layers[1].mlp.down_proj, Int8DynamicLinear)
    assert isinstance(dynamic.lm_head, Int8DynamicLinear)
    assert use_fast_int8(load_quantized(trained_tiny_dir, "int8-weight")) == 0


@torch.inference_mode()
def test_siblings_share_one_call_with_the_same_outputs(trained_tiny_dir):
    """q/k/v and gate/up take one fbgemm call per token; every output is bit for bit what
    each layer computes alone, in decoding steps and in the greedy completion."""
    model = load_quantized(trained_tiny_dir, "int8-dynamic")
    use_fast_int8(model)
    members = [m for m in model.modules() if isinstance(m, Int8DynamicLinear)]
    shared = [m for m in members if m.shared is not None]
    assert len(shared) == 10, "2 layers x (q, k, v, gate, up)"
    attention = model.model.layers[0].self_attn
    assert attention.q_proj.shared[0] is attention.v_proj.shared[0]
    assert isinstance(attention.q_proj.shared[0], SharedCall)
    assert model.model.layers[0].mlp.down_proj.shared is None

    prompt = torch.tensor([[5, 17, 42, 9]])
    steps = {}
    for sharing in (True, False):
        if not sharing:
            for m in shared:
                m.shared = None
        out = model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=0)
        cache, logits = None, []
        for token in out[0, :8]:
            step = model(token.view(1, 1), past_key_values=cache, use_cache=True)
            cache = step.past_key_values
            logits.append(step.logits)
        steps[sharing] = (out, torch.cat(logits))
    assert torch.equal(steps[True][0], steps[False][0])
    assert torch.equal(steps[True][1], steps[False][1])


def test_a_float_head_is_left_alone(trained_tiny_dir):
    kept = load_quantized(trained_tiny_dir, "int8-dynamic", quantize_head=False)
    assert head_precision(kept, quantize_head=False) == "float (--keep_head_float)"
    assert use_fast_int8(kept) == 14
    assert type(kept.lm_head) is torch.nn.Linear and type(kept.lm_head.weight) is Parameter


def test_a_head_tied_to_the_embeddings_stays_float(tmp_path):
    tied = make_tiny_model(300)
    tied.config.tie_word_embeddings = True
    tied.tie_weights()
    tied.save_pretrained(tmp_path)
    model = load_quantized(tmp_path, "int8-dynamic")
    assert head_precision(model, quantize_head=True) == "float (tied to the input embeddings)"
    assert model.lm_head.weight is model.model.embed_tokens.weight, "still tied"
    assert type(model.model.layers[0].mlp.up_proj.weight).__name__ == "Int8Tensor"
    x = torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        diff = (model(x).logits - tied(x).logits).abs().max()
    assert 0 < diff < 0.05, "int8 layers, same embeddings and head"


@pytest.mark.slow
def test_generate_decodes_a_quantize_folder_on_fbgemm(tmp_path, trained_tiny_dir, capsys):
    out = tmp_path / "int8"
    args = ["quantize", str(trained_tiny_dir), "--method", "int8-dynamic", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "15 layers decode on fbgemm" in printed
    args = ["generate", "--model", str(out), "--prompt", "To be, or not to be", "--max_new_tokens"]
    args += ["12", "--show_progress", "false"]
    completions, kernels = {}, ("auto", "torchao")
    for kernel in kernels:
        assert main([*args, "--int8_kernel", kernel]) == 0
        captured = capsys.readouterr()
        fbgemm = "int8: 15 torchao int8-dynamic layers decode on fbgemm" in captured.err
        assert fbgemm == (kernel == "auto"), captured.err
        completions[kernel] = captured.out
    assert completions["auto"].strip(), "it generated text"
    # Greedy text is not compared: on a CPU without VNNI fbgemm quantizes activations to 7 bits
    # (reduce_range), and this 30-step model's near-ties (top-1 margins of 0.03) flip. What
    # must hold is each decoding step's logits, along the same tokens, and the argmax wherever
    # the margin is wider than the kernels differ.
    loaded = {k: load_for_evaluation(str(out), int8_kernel=k, show_progress=False) for k in kernels}
    assert [loaded[k].fast_int8_layers for k in kernels] == [15, 0]
    prompt = loaded["torchao"].tokenizer("To be, or not to be", return_tensors="pt").input_ids
    with torch.inference_mode():
        reference = loaded["torchao"].model.generate(
            prompt, max_new_tokens=12, do_sample=False, pad_token_id=0
        )[0, prompt.shape[1] :]
    logits = {k: cached_steps(loaded[k].model, prompt, reference) for k in kernels}
    assert torch.equal(logits["torchao"].argmax(-1), reference), "the steps are generate's"
    diff = (logits["auto"] - logits["torchao"]).abs().amax(-1)
    assert diff[0] == 0, "the prompt's forward stays on torchao's kernel"
    assert diff.max() < 0.03 * logits["torchao"].abs().max(), "int8 products agree to ~1%"
    top2 = logits["torchao"].topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * diff
    assert clear.sum() >= len(reference) // 2, "most steps are not near ties"
    agree = logits["auto"].argmax(-1) == reference
    assert agree[clear].all(), "fbgemm keeps every greedy choice that is not a near tie"


@torch.inference_mode()
def cached_steps(model: torch.nn.Module, prompt: torch.Tensor, tokens: torch.Tensor):
    """Last-position logits of the prompt's forward, then of one-token cached steps along
    ``tokens``: how generate decodes, teacher-forced so two kernels see the same inputs."""
    step = model(prompt, use_cache=True)
    cache, logits = step.past_key_values, [step.logits[0, -1]]
    for token in tokens[:-1]:
        step = model(token.view(1, 1), past_key_values=cache, use_cache=True)
        cache = step.past_key_values
        logits.append(step.logits[0, -1])
    return torch.stack(logits)
