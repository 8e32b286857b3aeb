"""A fast CPU kernel for the int8-dynamic folders ``llmkit quantize`` writes.

torchao 0.18's ``Int8Tensor`` has no fast eager CPU kernel (int8-dynamic goes through
``int_scaled_matmul``, int8-weight multiplies in float), so such a folder decodes at 0.3-0.5x
float32 on a CPU (bench/quantize.py). PyTorch's own x86 int8 kernel, fbgemm's
``quantized::linear_dynamic`` (what ``torch.ao.quantization.quantize_dynamic`` runs), is fast
at batch 1, but its modules cannot be saved with ``save_pretrained``. So the folder on disk stays
torchao's (plain ``from_pretrained`` loads it) and, once loaded on a CPU, each int8-dynamic
linear layer is handed to fbgemm with the int8 values and per-row scales torchao stored: the
weights are not rounded again. fbgemm quantizes activations per call (asymmetric uint8), torchao
per token (symmetric int8): alike for one token, far coarser for a prompt whose tokens differ
in scale (logits 4e-2 off against torchao's 1.4e-2, measured). So fbgemm takes the calls
with one token, the decoding steps of batch-1 generation, and torchao's own layer (kept) the rest:
prefill, batches, perplexity. Weight-only layers are left alone: their float activations are
the point of that method.

Layers that read the same input (a Llama block's q/k/v projections, its gate/up pair) share one
fbgemm call over their stacked weights: fbgemm quantizes the activation once per call from that
input, so each layer's output is the very product it would get alone, for fewer calls per token
(29 -> 17 on the `make pretrain` model, measured 4-10% faster decoding there).
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import torch


class Int8DynamicLinear(torch.nn.Module):
    """A torchao int8-dynamic linear layer whose one-token calls run on fbgemm, same weights."""

    def __init__(self, layer: torch.nn.Linear):
        super().__init__()
        self.layer = layer  # torchao's, for calls with more than one token
        qdata, scale, bias = layer.weight.qdata, layer.weight.scale, layer.bias
        self.out_features, self.in_features = qdata.shape
        rows = torch.zeros(self.out_features, dtype=torch.long)
        with warnings.catch_warnings():
            # torch 2.13 marks its quantized tensor types deprecated (pytorch #184982); they are
            # still what fbgemm packs from, and use_fast_int8 stands down once they are gone
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions")
            weight = torch._make_per_channel_quantized_tensor(
                qdata.contiguous(), scale.reshape(-1).double(), rows, 0
            )
        bias = None if bias is None else bias.detach().float()
        self._packed = torch.ops.quantized.linear_prepack(weight, bias)
        # without VNNI, fbgemm's u8 x s8 products are summed in saturating int16 pairs, which is
        # why torch then quantizes activations to 7 bits; with VNNI they sum in int32
        self.reduce_range = not has_vnni()
        self.shared: tuple[SharedCall, int] | None = None  # set by use_fast_int8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() != x.shape[-1] or x.dtype != torch.float32:
            return self.layer(x)
        if self.shared is not None:
            call, index = self.shared
            return call(x)[index]
        return torch.ops.quantized.linear_dynamic(x, self._packed, self.reduce_range)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, one token: fbgemm"
        )


class SharedCall:
    """One fbgemm call for sibling layers fed the same input, split into their outputs; the
    last input and its outputs are kept so that each sibling's call after the first is free.
    The input is recognised by identity (held, so no new tensor can take its place); inference
    tensors have no version counter to see in-place changes, and the blocks make none between
    sibling calls."""

    def __init__(self, members: list[Int8DynamicLinear]):
        qdata = torch.cat([m.layer.weight.qdata for m in members])
        scale = torch.cat([m.layer.weight.scale.reshape(-1) for m in members])
        biases = [m.layer.bias for m in members]
        bias = None if biases[0] is None else torch.cat([b.detach().float() for b in biases])
        rows = torch.zeros(len(scale), dtype=torch.long)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*quantized tensor creation functions")
            weight = torch._make_per_channel_quantized_tensor(
                qdata.contiguous(), scale.double(), rows, 0
            )
        self._packed = torch.ops.quantized.linear_prepack(weight, bias)
        self._sizes = [m.out_features for m in members]
        self._reduce_range = members[0].reduce_range
        self._input: torch.Tensor | None = None
        self._outputs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self._input is not x:
            y = torch.ops.quantized.linear_dynamic(x, self._packed, self._reduce_range)
            self._outputs = list(torch.split(y, self._sizes, dim=-1))
            self._input = x
        return self._outputs


#: sibling layers that transformers' Llama-style blocks call on one input
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def share_calls(model: torch.nn.Module) -> int:
    """Give each group of swapped siblings one SharedCall; the number of layers sharing."""
    shared = 0
    for block in model.modules():
        for names in SIBLINGS:
            members = [getattr(block, name, None) for name in names]
            if not all(isinstance(m, Int8DynamicLinear) for m in members):
                continue
            if (
                len({m.in_features for m in members}) != 1
                or len({m.layer.bias is None for m in members}) != 1
            ):
                continue
            call = SharedCall(members)
            for index, member in enumerate(members):
                member.shared = (call, index)
            shared += len(members)
    return shared


@cache  # read once, not once per layer
def has_vnni() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def use_fast_int8(model: torch.nn.Module) -> int:
    """Swap each torchao int8-dynamic linear layer (per-row scales) for fbgemm's; the count.

    For inference in this process on a CPU: the swapped model holds packed weights that
    ``save_pretrained`` does not write, so keep the folder ``llmkit quantize`` made."""
    if "fbgemm" not in torch.backends.quantized.supported_engines or not hasattr(
        torch.ops.quantized, "linear_dynamic"
    ):
        return 0
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            weight = getattr(child, "weight", None)
            if isinstance(child, torch.nn.Linear) and _per_row_dynamic(weight):
                setattr(parent, name, Int8DynamicLinear(child))
                swapped += 1
    share_calls(model)
    return swapped


def _per_row_dynamic(weight: object) -> bool:
    try:
        from torchao.quantization import Int8Tensor
    except ImportError:
        return False
    return (
        isinstance(weight, Int8Tensor)
        and weight.device.type == "cpu"
        and weight.act_quant_kwargs is not None  # int8-dynamic, not weight-only
        and weight.act_pre_scale is None
        and getattr(weight, "act_quant_scale", None) is None  # static activation scales
        and list(weight.block_size) == [1, weight.qdata.shape[1]]
    )
