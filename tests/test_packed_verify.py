"""Speculative verification on MKL's packed GEMM: same products, same greedy text, every
other call untouched."""

from __future__ import annotations

import torch
from torch.profiler import ProfilerActivity, profile

from llmkit.generation.packed_verify import pack, pack_for_verification, unpack


def packed_calls(fn) -> int:
    """How many times ``fn`` ran MKL's packed linear (torch's profiler, not our counters)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "mkl::_mkl_linear")


@torch.inference_mode()
def test_the_packed_row_count_runs_packed_and_every_other_call_is_torchs():
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 96)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    reference = {m: torch.randn(1, m, 64) for m in (1, 4, 5, 7)}
    expected = {
        m: torch.nn.functional.linear(x, layer.weight, layer.bias) for m, x in reference.items()
    }
    pack(layer, 5)
    assert packed_calls(lambda: layer(reference[5])) == 1
    assert torch.allclose(layer(reference[5]), expected[5], atol=1e-5, rtol=1e-5)
    for m in (1, 4, 7):
        assert packed_calls(lambda m=m: layer(reference[m])) == 0
        assert torch.equal(layer(reference[m]), expected[m]), "other row counts: torch's product"
    assert layer.state_dict().keys() == before.keys()
    assert all(torch.equal(layer.state_dict()[k], v) for k, v in before.items())
    assert unpack(layer) == 1 and "forward" not in layer.__dict__
    assert packed_calls(lambda: layer(reference[5])) == 0


def test_packing_is_measured_and_kept_only_where_it_pays():
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))
    never = pack_for_verification(model, 6, min_gain=1e9)
    assert never.layers == 0 and never.torch_ms > 0 and never.packed_ms > 0
    assert "under 1.10x faster" in never.describe() and unpack(model) == 0
    for rows in (1, 17):  # one token decodes on torch's GEMV; many rows: its GEMM is efficient
        assert pack_for_verification(model, rows, min_gain=0) is None
    assert pack_for_verification(model.to(torch.float64), 6, min_gain=0) is None
    short = pack_for_verification(model.to(torch.float32), 6, min_gain=0, spare=16_383)
    assert short.layers == 0 and "packed copy needs 0.0 GiB, RAM is short" in short.describe()
    forced = pack_for_verification(model.to(torch.float32), 6, min_gain=0)
    assert (
        forced.layers == 2 and "2 float32 linear layers verify 6-token calls" in forced.describe()
    )
    assert unpack(model) == 2
    hooked = model[0]
    hooked.forward = lambda x: type(hooked).forward(hooked, x)  # as accelerate's hooks do
    assert pack_for_verification(model, 6, min_gain=0).layers == 1, "a hooked layer is left"
    assert unpack(model) == 1 and "forward" in hooked.__dict__, "and its forward kept"
