"""Cheaper speculative verification on a CPU: the target's float32 linear layers run the one row
count a draft run verifies (drafts + 1 tokens) on MKL's packed GEMM.

A round's cost is mostly the target verifying six tokens, and torch's float32 linear makes a
few rows dear: a 102M target's six-token forward took 1.68x its one-token forward (46.7 vs
27.7 ms, 2-core Xeon), since the small-M GEMM path re-packs the weight on every call. MKL
can pack a weight once for a given row count (``torch.ops.mkl._mkl_linear``, what
``torch.compile``'s CPU freezing pass emits); with it the same forward took 36.8 ms (1.33x).
Written here because neither transformers nor torch offers it in eager mode, and compiling the
target for generate's changing cache shapes costs more than it saves (issue 18's note).

A packed weight serves calls of exactly its row count; any other call (one-token decoding,
the prompt, a draft cut short) goes through the layer's own forward unchanged. Each layer keeps
one packed copy of its weight beside the original, so the linear weights sit twice in RAM.
Whether packing pays differs between CPUs (and MKL on AMD's may not), so it is measured on the
model's own widest layer before anything is swapped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

#: packing is kept only where it makes the measured product at least this much faster
MIN_GAIN = 1.10
#: above this many rows torch's GEMM is efficient already (a prompt's prefill)
MAX_ROWS = 16


@dataclass
class Packing:
    """What ``pack_for_verification`` measured and did."""

    rows: int
    layers: int  # linear layers swapped; 0 where packing did not pay or does not fit
    torch_ms: float = 0.0  # the widest layer's product at ``rows`` rows, torch's kernel
    packed_ms: float = 0.0  # the same on MKL's packed GEMM
    why: str = ""  # why nothing was measured, when nothing was

    def describe(self) -> str:
        if self.why:
            return f"verification: torch's kernel ({self.why})"
        figures = (
            f"{self.rows} rows through the widest layer: {self.packed_ms:.2f} ms packed vs "
            f"{self.torch_ms:.2f} ms torch's, measured here"
        )
        if self.layers:
            return (
                f"verification: {self.layers} float32 linear layers verify {self.rows}-token "
                f"calls on MKL's packed GEMM ({figures}; --verify_kernel torch keeps torch's)"
            )
        return f"verification: torch's kernel (packing {figures}, under {MIN_GAIN:.2f}x faster)"


def available() -> bool:
    return bool(torch._C.has_mkl) and hasattr(torch.ops.mkl, "_mkl_linear")


def pack_for_verification(
    model: torch.nn.Module, rows: int, min_gain: float = MIN_GAIN, spare: int | None = None
) -> Packing | None:
    """Swap the forward of each float32 CPU linear layer of ``model`` for one whose calls of
    ``rows`` rows run on a packed weight, where that measures ``min_gain`` faster here and the
    packed copies fit in ``spare`` bytes (default: half the RAM available now). None where
    there is nothing to decide: no MKL, no such layers (a GPU, bf16), or a row count torch's
    own kernels serve well (one, or above ``MAX_ROWS``)."""
    layers = [m for m in model.modules() if _packable(m)]
    if not available() or not layers or not 1 < rows <= MAX_ROWS:
        return None
    extra = sum(m.weight.numel() * 4 for m in layers)
    if extra > (free_memory() // 2 if spare is None else spare):
        return Packing(rows, 0, why=f"a packed copy needs {extra / 2**30:.1f} GiB, RAM is short")
    widest = max(layers, key=lambda m: m.weight.numel())
    torch_s, packed_s = measure(widest, rows)
    packing = Packing(rows, 0, 1e3 * torch_s, 1e3 * packed_s)
    if torch_s < min_gain * packed_s:
        return packing
    for layer in layers:
        pack(layer, rows)
    packing.layers = len(layers)
    return packing


def pack(layer: torch.nn.Linear, rows: int) -> None:
    """Give ``layer`` a packed weight for ``rows``-row calls; its parameters, state dict and
    every other call stay as they were (the forward is overridden on the instance only)."""
    with torch.no_grad():
        packed = torch.ops.mkl._mkl_reorder_linear_weight(layer.weight.detach(), rows)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.numel() != rows * layer.in_features or x.dtype != torch.float32:
            return type(layer).forward(layer, x)
        y = torch.ops.mkl._mkl_linear(x.reshape(rows, -1), packed, layer.weight, layer.bias, rows)
        return y.view(*x.shape[:-1], layer.out_features)

    forward.packed_rows = rows  # how unpack tells this forward from others set on an instance
    layer.forward = forward


def unpack(model: torch.nn.Module) -> int:
    """Undo ``pack`` on every layer of ``model``; the number restored."""
    restored = 0
    for module in model.modules():
        if hasattr(module.__dict__.get("forward"), "packed_rows"):
            del module.forward
            restored += 1
    return restored


@torch.inference_mode()
def measure(layer: torch.nn.Linear, rows: int, calls: int = 20, repeats: int = 5):
    """Seconds per ``rows``-row product through ``layer``: (torch's, packed), each the best of
    ``repeats`` interleaved rounds (the fastest is the one other processes disturbed least)."""
    x = torch.randn(rows, layer.in_features)
    weight, bias = layer.weight.detach(), layer.bias
    packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
    runs = {
        "torch": lambda: torch.nn.functional.linear(x, weight, bias),
        "packed": lambda: torch.ops.mkl._mkl_linear(x, packed, weight, bias, rows),
    }
    for run in runs.values():
        run()  # first calls pick kernels
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                run()
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best["torch"], best["packed"]


def free_memory() -> int:
    """Bytes of RAM available now (MemAvailable: free pages plus reclaimable cache; where
    /proc/meminfo is missing, taken as plenty)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 1 << 62


def _packable(module: torch.nn.Module) -> bool:
    return (
        type(module) is torch.nn.Linear  # not torchao's or peft's subclasses and wrappers
        and module.weight.dtype == torch.float32
        and module.weight.device.type == "cpu"
        and type(module.weight) in (torch.Tensor, torch.nn.Parameter)
        and "forward" not in module.__dict__  # packed already, or hooked (accelerate's offload)
    )
