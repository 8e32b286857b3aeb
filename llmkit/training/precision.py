"""Precision and compilation chosen by measurement on the machine that trains.

Machines of one kind differ: one CPU multiplies bf16 2.5x faster than fp32 (AMX), another
(avx512_bf16 without AMX) slower than fp32, so a fixed ``bf16`` default is a quarter slower
on the second. ``mixed_precision: auto`` asks the hardware instead: bf16 on a CUDA GPU that
has it, fp16 (with loss scaling) on one that does not, and on a CPU bf16 only where a short
probe of a training step's matmuls (forward and backward, autocast casts included) shows it
faster than fp32 by ``BF16_MARGIN``. The probe takes about a second (where bf16 has no fast
kernel, a few-row screen says so and ends it) and is cached per machine (processor, threads,
torch version) in ``~/.cache/llmkit`` (``$LLMKIT_CACHE_DIR``).

``torch_compile: auto`` compiles when the run is long enough to pay the compile back:
eager seconds x (1 - 1 / speedup) > compile seconds, with the run's eager seconds estimated
from its FLOPs and the probe's measured peak (see :func:`compile_pays`), and the compile
seconds a cold compile's unless this model and batch compiled here before and Inductor's
cache still holds its kernels (:mod:`llmkit.training.compile_record`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from llmkit.config import TrainConfig
from llmkit.training.compile_record import compile_history, compile_key
from llmkit.training.machine import machine_key, read_measurements, write_measurements

PROBE_FILE = "precision-probe.json"
#: bf16 autocast adds casts the bare matmul does not: it must win the probe by this much
BF16_MARGIN = 1.10
#: torch.compile measured here (tiny preset, bf16, 2-core CPU): ~50 s to compile, then
#: 1.05-1.18x the tokens/s; on CUDA compiles are shorter than the gains are large. Conservative
#: figures: a run compiles only when even these pay back. Checked on an Intel Xeon (avx512_bf16,
#: no AMX), fp32: bench/train_step.py reads 32 s cold and 1.18x a step (break-even ~210 s), yet
#: a compiled `make pretrain` (300 steps, ~250 s of steps) took 294 s against 273 s eager.
COMPILE_SECONDS = {"cpu": 50.0, "cuda": 60.0}
#: a compile whose kernels Inductor's cache already holds (this model, batch and machine ran
#: compiled before): 5.6 s measured for the tiny preset in fp32 (35 s cold). On CUDA not
#: measured: a third of the cold figure, as on CPU, is assumed. A measured warm compile, once
#: there is one, replaces these (see :mod:`llmkit.training.compile_record`).
WARM_COMPILE_SECONDS = {"cpu": 10.0, "cuda": 20.0}
COMPILE_SPEEDUP = {"cpu": 1.10, "cuda": 1.30}
#: the share of the probe's throughput an eager training step reaches, by precision; only
#: sizes a run for the compile rule. Tiny preset, 300 steps on a 2-core AMD EPYC
#: (bench/pretrain_throughput.py): fp32 3,815 tokens/s x 6 x 4.25M weights = 97 GFLOP/s of a
#: 197 probe (0.49); bf16 5,850 -> 149 of 444 (0.34). A single 0.6 had estimated the 3,000-step
#: reader run at 583 s; it took 1,132 s. fp16 (GPUs only) is taken as bf16's, not measured.
EAGER_MFU = {"no": 0.5, "fp16": 0.35, "bf16": 0.35}
#: the probe's first look: a bf16 step this far below fp32 on a few rows ends the probe there
#: (an AMD EPYC with AVX2 only: bf16 1.8 vs fp32 201 GFLOP/s; bf16 has no kernel of its own)
SCREEN_ROWS = 64
PROBE_ROWS = 2048
SCREEN_FLOOR = 0.5


@dataclass
class Probe:
    """Dense matmul throughput in each precision, measured on this machine."""

    fp32_gflops: float
    bf16_gflops: float
    machine: str
    #: rows bf16 was measured on: the full probe's, or the screen's where it ended there
    rows: int = PROBE_ROWS

    @property
    def bf16_ratio(self) -> float:
        return self.bf16_gflops / self.fp32_gflops


@dataclass
class Settled:
    """The concrete settings a run trains with, and why, for the log and the card."""

    train: TrainConfig
    precision_reason: str
    compile_reason: str
    probe: Probe | None = None
    #: names this model, batch shape and precision in the compile record
    compile_key: str | None = None

    @property
    def precision(self) -> str:
        """The precision and why, as the card's training table shows it."""
        return f"{self.train.mixed_precision} ({self.precision_reason})"

    def describe(self) -> str:
        return (
            f"precision: {self.train.mixed_precision} ({self.precision_reason}); "
            f"torch.compile: {'on' if self.train.torch_compile == 'true' else 'off'} "
            f"({self.compile_reason})"
        )


def step_gflops(
    tokens: int = PROBE_ROWS,
    width: int = 512,
    reps: int = 8,
    screen_rows: int = SCREEN_ROWS,
    screen_floor: float = SCREEN_FLOOR,
) -> tuple[float, float, int]:
    """(fp32, bf16 autocast) GFLOP/s of a training step's matmuls, and the rows bf16 was
    measured on: an MLP block's forward and backward, so autocast's casts are paid as in
    training.

    A screen of ``screen_rows`` rows comes first: where bf16 runs below ``screen_floor`` of
    fp32 there (a CPU without bf16 instructions multiplies it ~100x slower, and the full probe
    would take ten minutes), bf16's figure is the screen's. Otherwise each figure is the best
    of ``reps`` steps on ``tokens`` rows (fp32's always is), the precisions interleaved: the
    fastest repeat is the one another process interrupted least (this machine is shared)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, width, generator=gen)
    up = torch.randn(width, 4 * width, generator=gen, requires_grad=True)
    down = torch.randn(4 * width, width, generator=gen, requires_grad=True)

    def step(dtype: torch.dtype | None, rows: torch.Tensor) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            y = torch.nn.functional.gelu(rows @ up) @ down
        y.float().square().mean().backward()
        return time.perf_counter() - start

    def gflops(seconds: float, rows: int) -> float:
        return 6 * rows * 2 * width * 4 * width / seconds / 1e9  # fwd 2, bwd 4 FLOPs per weight

    screen = x[:screen_rows]
    for dtype in (None, torch.bfloat16):
        step(dtype, screen)  # warm-up: first calls pick kernels
    fp32, bf16 = (gflops(step(dtype, screen), len(screen)) for dtype in (None, torch.bfloat16))
    if bf16 < screen_floor * fp32:
        # fp32 still measured in full: it sizes the run for the compile rule, and a few rows
        # read ~half the throughput of the full step
        fp32 = max(gflops(step(None, x), tokens) for _ in range(reps + 1))
        return fp32, bf16, len(screen)
    best = {None: float("inf"), torch.bfloat16: float("inf")}
    for dtype in best:
        step(dtype, x)
    for _ in range(reps):
        for dtype in best:
            best[dtype] = min(best[dtype], step(dtype, x))
    return gflops(best[None], tokens), gflops(best[torch.bfloat16], tokens), tokens


def cpu_probe() -> Probe:
    """This machine's cached probe, or a new one (written to the cache)."""
    key = machine_key()
    cached = read_measurements(PROBE_FILE)
    if key in cached:
        return Probe(**cached[key])
    fp32, bf16, rows = step_gflops()
    probe = Probe(fp32, bf16, key, rows)
    write_measurements(PROBE_FILE, {**cached, key: probe.__dict__})
    return probe


def choose_precision(requested: str) -> tuple[str, str, Probe | None]:
    """(precision, reason, probe). An explicit ``no``/``bf16``/``fp16`` is always obeyed."""
    if requested != "auto":
        return requested, "as configured", None
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", f"auto: {torch.cuda.get_device_name()} supports bf16", None
        reason = f"auto: {torch.cuda.get_device_name()} has no bf16; fp16 with loss scaling"
        return "fp16", reason, None
    probe = cpu_probe()
    screen = f" (a {probe.rows}-row screen)" if probe.rows < PROBE_ROWS else ""
    figures = (
        f"training matmuls bf16 {_gflops(probe.bf16_gflops)}{screen} vs fp32 "
        f"{_gflops(probe.fp32_gflops)} GFLOP/s"
    )
    if probe.bf16_ratio >= BF16_MARGIN:
        return "bf16", f"auto: {figures} on this CPU", probe
    return "no", f"auto: {figures} on this CPU, bf16 not {BF16_MARGIN:.2f}x faster", probe


def _gflops(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def step_flops(model: torch.nn.Module, tokens: int) -> float:
    """About 6 FLOPs per weight per token (forward and backward); the input embedding is a
    lookup, not a matmul."""
    embedding = model.get_input_embeddings().weight.numel()
    return 6.0 * (sum(p.numel() for p in model.parameters()) - embedding) * tokens


def compile_pays(eager_seconds: float, device: str, cost: float | None = None) -> bool:
    """Compile when the time it saves exceeds the time it costs (``cost`` seconds, by default
    a cold compile's)."""
    saved = eager_seconds * (1 - 1 / COMPILE_SPEEDUP[device])
    return saved > (COMPILE_SECONDS[device] if cost is None else cost)


def compile_cost(device: str, key: str | None) -> tuple[float, str]:
    """Seconds this run's compile should take, and where that figure comes from: cold, unless
    this model and batch compiled here before against the Inductor cache still on disk."""
    history = compile_history(key) if key else []
    if len(history) >= 2:  # the first was cold, the later ones read Inductor's cache
        warm = max(history[1:])
        return warm, f"this model compiled here before: {warm:.0f} s with a warm cache"
    if history:
        warm = WARM_COMPILE_SECONDS[device]
        return warm, (
            f"this model compiled here before in {history[0]:.0f} s, and Inductor's cache "
            f"holds it: ~{warm:.0f} s"
        )
    return COMPILE_SECONDS[device], f"a cold compile ~{COMPILE_SECONDS[device]:.0f} s"


def settle(
    train: TrainConfig,
    *,
    flops_per_step: float,
    model: torch.nn.Module | None = None,
    sequence_length: int = 0,
) -> Settled:
    """``train`` with ``auto`` replaced by what this machine does best, and the reasons.

    ``flops_per_step`` (about 6 x parameters x tokens per optimizer step) sizes the run for
    the compile rule; ``model`` and the batches' ``sequence_length`` find what compiling it
    cost here before (``Settled.compile_key``: pass it to the loop, which records this run's)."""
    precision, precision_reason, probe = choose_precision(train.mixed_precision)
    key = (
        compile_key(model, replace(train, mixed_precision=precision), sequence_length)
        if model is not None
        else None
    )
    compile_on, compile_reason = train.torch_compile, "as configured"
    if train.torch_compile == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            probe = probe or cpu_probe()
            peak = (probe.bf16_gflops if precision == "bf16" else probe.fp32_gflops) * 1e9
        else:
            peak = 400e12  # a modern GPU's dense bf16 order of magnitude; only sizes the run
        eager = train.max_steps * flops_per_step / (peak * EAGER_MFU[precision])
        cost, source = compile_cost(device, key)
        compile_on = "true" if compile_pays(eager, device, cost) else "false"
        need = cost / (1 - 1 / COMPILE_SPEEDUP[device])
        compile_reason = (
            f"auto: ~{eager:,.0f} s eager run estimated, compiling pays from ~{need:,.0f} s "
            f"({source})"
        )
    return Settled(
        replace(train, mixed_precision=precision, torch_compile=compile_on),
        precision_reason,
        compile_reason,
        probe,
        key,
    )
