"""Precision and compilation chosen by measurement: ``auto`` follows the machine's probe, an
explicit setting is obeyed, and the probe is measured once per machine."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from conftest import make_tiny_model, pretrain_args
from torch._dynamo.utils import counters

from llmkit.cli import main
from llmkit.config import TrainConfig
from llmkit.training import compile_record, precision
from llmkit.training.logging import read_metrics


@pytest.fixture(autouse=True)
def probe_cache(tmp_path, monkeypatch):
    """Each test gets its own machine cache."""
    cache = tmp_path / "machine-cache"
    monkeypatch.setenv("LLMKIT_CACHE_DIR", str(cache))
    return cache


def write_probe(cache, fp32: float, bf16: float, rows: int = precision.PROBE_ROWS) -> None:
    """A cached probe of this machine with chosen figures (the file a real probe writes)."""
    key = precision.machine_key()
    entry = {"fp32_gflops": fp32, "bf16_gflops": bf16, "machine": key, "rows": rows}
    cache.mkdir(parents=True, exist_ok=True)
    (cache / precision.PROBE_FILE).write_text(json.dumps({key: entry}))


def test_probe_is_measured_once_and_cached(probe_cache):
    first = precision.cpu_probe()
    assert first.fp32_gflops > 0 and first.bf16_gflops > 0
    cached = json.loads((probe_cache / precision.PROBE_FILE).read_text())
    assert list(cached) == [precision.machine_key()]
    again = precision.cpu_probe()
    assert again == first  # read back, not measured again (a new measurement would differ)


def test_probe_figures_are_a_training_steps_flops():
    """fp32 and bf16 each time the same forward and backward of an MLP block."""
    fp32, bf16, rows = precision.step_gflops(tokens=256, width=64, reps=2, screen_floor=0)
    assert 0.01 < fp32 < 1e5 and 0.01 < bf16 < 1e5 and rows == 256


def test_probe_ends_at_the_screen_where_bf16_is_far_behind():
    """A CPU without bf16 kernels answers on a few rows instead of ten minutes of full probe;
    elsewhere the full probe runs (floor 0: the screen can never end it)."""
    fp32, bf16, rows = precision.step_gflops(
        tokens=256, width=64, reps=2, screen_rows=16, screen_floor=1e9
    )
    assert rows == 16 and fp32 > 0 and bf16 > 0
    assert (
        precision.step_gflops(tokens=256, width=64, reps=2, screen_rows=16, screen_floor=0)[2]
        == 256
    )


def test_a_screened_probe_says_so(probe_cache):
    write_probe(probe_cache, 76.4, 0.55, rows=64)
    value, reason, _ = precision.choose_precision("auto")
    assert value == "no"
    assert "training matmuls bf16 0.55 (a 64-row screen) vs fp32 76 GFLOP/s" in reason


@pytest.mark.parametrize(
    ("fp32", "bf16", "chosen"),
    [(190.0, 160.0, "no"), (150.0, 369.0, "bf16"), (200.0, 215.0, "no"), (200.0, 230.0, "bf16")],
)
def test_auto_follows_the_probe_with_a_margin(probe_cache, fp32, bf16, chosen):
    write_probe(probe_cache, fp32, bf16)
    value, reason, probe = precision.choose_precision("auto")
    assert value == chosen
    assert f"bf16 {bf16:,.0f} vs fp32 {fp32:,.0f} GFLOP/s" in reason
    assert probe.bf16_ratio == pytest.approx(bf16 / fp32)


@pytest.mark.parametrize("explicit", ["no", "bf16", "fp16"])
def test_an_explicit_precision_is_obeyed(probe_cache, explicit):
    write_probe(probe_cache, 100.0, 1000.0)
    assert precision.choose_precision(explicit)[:2] == (explicit, "as configured")


def test_compile_rule_pays_back_only_for_long_runs(probe_cache):
    """Break-even on CPU: 50 s / (1 - 1/1.10) = 550 s of eager training."""
    assert not precision.compile_pays(500.0, "cpu")
    assert precision.compile_pays(600.0, "cpu")
    write_probe(probe_cache, 100.0, 50.0)  # fp32 wins: the run is sized at 100 GFLOP/s x 50%
    train = TrainConfig(max_steps=300)
    short = precision.settle(train, flops_per_step=1e9)
    assert short.train.torch_compile == "false"  # 300 x 1e9 / 50e9 = 6 s eager
    assert "~6 s eager run estimated, compiling pays from ~550 s" in short.compile_reason
    long = precision.settle(train, flops_per_step=1e12)
    assert long.train.torch_compile == "true"  # 6,000 s eager
    forced = precision.settle(
        TrainConfig(max_steps=300, torch_compile="false"), flops_per_step=1e12
    )
    assert forced.train.torch_compile == "false" and forced.compile_reason == "as configured"


def test_a_compile_inductors_cache_holds_is_counted_as_cheap(probe_cache, tmp_path, monkeypatch):
    """Cold 50 s needs ~550 s of eager run; after this model compiled here once, ~10 s needs
    ~110 s, and after a measured warm compile, that one's figure."""
    inductor = tmp_path / "inductor"
    inductor.mkdir()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(inductor))
    write_probe(probe_cache, 100.0, 50.0)
    model, train = make_tiny_model(512), TrainConfig(max_steps=300)

    def settled(sequence_length: int = 64):  # 300 x 2e10 / 50e9 = 120 s eager
        return precision.settle(
            train, flops_per_step=2e10, model=model, sequence_length=sequence_length
        )

    cold = settled()
    assert cold.train.torch_compile == "false"
    assert "compiling pays from ~550 s (a cold compile ~50 s)" in cold.compile_reason
    compile_record.record_compile(cold.compile_key, 33.0)
    once = settled()
    assert once.compile_key == cold.compile_key and once.train.torch_compile == "true"
    assert "pays from ~110 s (this model compiled here before in 33 s" in once.compile_reason
    compile_record.record_compile(cold.compile_key, 4.0)
    assert "pays from ~44 s (this model compiled here before: 4 s with a warm cache)" in (
        settled().compile_reason
    )
    other_shape = settled(sequence_length=128)  # another graph: Inductor has not built it
    assert other_shape.train.torch_compile == "false"
    shutil.rmtree(inductor)  # the kernels are gone: the next compile is cold again
    assert settled().train.torch_compile == "false"
    assert compile_record.compile_history(cold.compile_key) == []


def test_a_run_saves_and_reports_what_auto_chose(tmp_path, probe_cache, corpus_file, capsys):
    write_probe(probe_cache, 150.0, 369.0)  # as measured on an AMX machine: bf16 wins
    out = tmp_path / "run"
    auto = ["--train.mixed_precision", "auto", "--train.torch_compile", "auto"]
    code = main(
        pretrain_args(out, corpus_file, tmp_path / "cache", "--train.max_steps", "4", *auto)
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert (
        "precision: bf16 (auto: training matmuls bf16 369 vs fp32 150 GFLOP/s on this CPU)"
        in printed
    )
    saved = yaml.safe_load((out / "llmkit_config.yaml").read_text())
    assert saved["train"]["mixed_precision"] == "bf16"  # the resolved run repeats exactly
    assert saved["train"]["torch_compile"] == "false"
    card = (out / "README.md").read_text()
    assert "auto: training matmuls bf16 369 vs fp32 150 GFLOP/s" in card


def test_a_deterministic_run_turns_on_torchs_deterministic_algorithms(
    tmp_path, corpus_file, capsys
):
    """Compiled CPU training repeats bit for bit only in this mode (measured: README)."""
    out = tmp_path / "run"
    args = pretrain_args(out, corpus_file, tmp_path / "cache", "--train.max_steps", "2")
    try:
        assert main([*args, "--train.deterministic", "true"]) == 0
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    saved = yaml.safe_load((out / "llmkit_config.yaml").read_text())
    assert saved["train"]["deterministic"] is True


def test_a_compiled_run_trains_as_eager_and_validates_eager(tmp_path, corpus_file, probe_cache):
    """One compiled graph, the training step's: validation runs on the eager module (compiling
    its no-grad graph, and again for a shorter last batch, cost more than it saved)."""
    losses = {}
    for compiled in ("true", "false"):
        counters.clear()
        out = tmp_path / compiled
        args = pretrain_args(out, corpus_file, tmp_path / "cache", "--train.max_steps", "4")
        extra = ["--train.logging_steps", "1", "--train.eval_steps", "2"]
        assert main([*args, *extra, "--train.torch_compile", compiled]) == 0
        records = read_metrics(out / "metrics.jsonl")
        losses[compiled] = [r["train_loss"] for r in records if "train_loss" in r]
        assert len([r for r in records if "val_loss" in r]) == 3  # steps 0, 2 and 4
        graphs = counters["stats"]["unique_graphs"]
        assert graphs == (1 if compiled == "true" else 0)
        # the compiled run recorded its compile (first step less a later one); eager adds none
        (entry,) = json.loads((probe_cache / compile_record.RECORD_FILE).read_text()).values()
        assert len(entry["seconds"]) == 1 and entry["seconds"][0] > 1.0
    assert len(losses["true"]) == 4
    assert losses["true"] == pytest.approx(losses["false"], rel=1e-3)
    assert losses["true"][-1] < losses["true"][0]
