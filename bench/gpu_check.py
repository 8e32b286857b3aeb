"""Issue 13's GPU checks, prepared to run in one call on a lent GPU machine (a few minutes).

1. the GPU's bf16 matmul peak, measured (8192^3 products): MFU's denominator;
2. `base` preset pretraining with bf16, torch.compile and sdpa: steady tokens/s (the median
   logging window after the first, which holds the compile) and MFU against that peak (goal
   >= 40%);
3. the same run under ``accelerate launch`` with FSDP2 (recipes/accelerate/fsdp.yaml, one
   process): tokens/s, and the saved folder loads with plain transformers;
4. a QA fine-tune of step 2's model under FSDP2 with ``eval.metric_for_best_model``: a learning
   rate of 0.1 makes the untrained pass the best, so the saved weights must equal the base's
   exactly; before best weights were gathered with ``get_state_dict`` they were DTensor
   shards (issue 13).

Every step runs even when an earlier one fails; the figures go to OUT/gpu_check.json and a
table to OUT/gpu_check.md. On the GPU machine (its image has torch with CUDA but not llmkit's
pinned libraries, and no registry), through the device tool:

    make device-wheels                                    # here: wheels into .device/wheels
    run(command="bash bench/gpu_check.sh", carry=[".device"], timeout_s=540)

``--tiny`` runs the same steps small on a CPU to check the script itself (accelerate ignores
the FSDP plugin on a CPU, so steps 3 and 4 then run without FSDP: only a GPU checks FSDP2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from pretrain_throughput import flops_per_token, matmul_peak
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[1]
FSDP = ROOT / "recipes" / "accelerate" / "fsdp.yaml"


def gpu_peak(n: int = 8192, reps: int = 10) -> float:
    """bf16 FLOP/s of large square products, timed with CUDA events after warm-ups."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1e3)


def llmkit(args: list[str], *, fsdp: bool, log: Path) -> tuple[int, float]:
    """One llmkit command (under ``accelerate launch`` with FSDP2 when asked): rc, seconds."""
    cmd = [sys.executable, "-m", "llmkit", *args]
    if fsdp:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(FSDP)]
        launch += [] if torch.cuda.is_available() else ["--cpu"]
        cmd = [*launch, "--num_processes", "1", "-m", "llmkit", *args]
    start = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    seconds = time.perf_counter() - start
    print(f"  {' '.join(cmd[1:])}\n  -> exit {rc} in {seconds:.0f} s (log: {log})", flush=True)
    if rc:
        print("  " + "\n  ".join(log.read_text().splitlines()[-15:]), flush=True)
    return rc, seconds


def steady_tokens_per_s(run: Path) -> float:
    """Median of the logged windows after the first (the first holds compile and warm-up)."""
    windows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [w["tokens_per_s"] for w in windows if "tokens_per_s" in w][1:]
    return statistics.median(rates) if rates else float("nan")


def model_flops_per_token(run: Path, block_size: int) -> float:
    with torch.device("meta"):  # shapes only
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(run))
    return flops_per_token(model, block_size)


def command(name: str, recipe: str, options: dict[str, object]) -> list[str]:
    """``llmkit NAME --recipe recipes/RECIPE --overwrite --key value ...``"""
    args = [name, "--recipe", str(ROOT / "recipes" / recipe), "--overwrite"]
    for key, value in options.items():
        args += [f"--{key}", str(value)]
    return args


def pretrain_args(out: Path, a: argparse.Namespace) -> list[str]:
    return command(
        "pretrain",
        "pretrain/base.yaml",
        {
            "output_dir": out,
            "model.preset": a.preset,
            "data.block_size": a.block_size,
            "tokenizer.vocab_size": a.vocab_size,
            "train.max_steps": a.steps,
            "train.per_device_train_batch_size": a.batch_size,
            "train.gradient_accumulation_steps": a.accumulation,
            "train.mixed_precision": "bf16",
            "train.torch_compile": "true" if a.compile else "false",
            "train.logging_steps": a.logging_steps,
            "train.eval_steps": 0,
            "train.save_steps": 0,
            "train.report_to": "[none]",
        },
    )


def finetune_args(base: Path, out: Path) -> list[str]:
    return command(
        "finetune",
        "finetune/qa.yaml",
        {
            "model.name_or_path": base,
            "output_dir": out,
            "train.max_steps": 6,
            "train.per_device_train_batch_size": 8,
            # high enough that step 0 is the best pass (as tests/test_distributed.py)
            "train.learning_rate": 0.1,
            "train.lr_scheduler_type": "constant",
            "train.warmup_ratio": 0,
            "train.mixed_precision": "bf16",
            "train.torch_compile": "false",
            "eval.every_n_steps": 2,
            "eval.max_examples": 8,
            "eval.test_max_examples": 8,
            "eval.metric_for_best_model": "loss",
            "eval.generation": "{max_new_tokens: 8}",
        },
    )


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "runs" / "gpu-check")))
    p.add_argument("--tiny", action="store_true", help="small and short, on any machine")
    a = p.parse_args()
    if a.tiny:
        a.preset, a.block_size, a.vocab_size, a.steps, a.batch_size = "tiny", 128, 4096, 8, 4
        a.accumulation, a.logging_steps, a.compile = 1, 2, False
    else:
        a.preset, a.block_size, a.vocab_size, a.steps, a.batch_size = "base", 1024, 32000, 120, 16
        a.accumulation, a.logging_steps, a.compile = 4, 10, True
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs"
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else "CPU (--tiny: checks the script only)"
    results: dict = {"device": device, "torch": torch.__version__, "preset": a.preset}
    results["compile"] = a.compile
    print(f"device: {device}; torch {torch.__version__}", flush=True)

    print("1. bf16 matmul peak", flush=True)
    peak = gpu_peak() if cuda else matmul_peak(torch.bfloat16)
    results["bf16_peak_tflops"] = peak / 1e12
    print(f"  {peak / 1e12:,.1f} TFLOP/s", flush=True)

    print(f"2. pretraining, {a.preset} preset, bf16, compile {a.compile}, sdpa", flush=True)
    plain = runs / "pretrain"
    rc, seconds = llmkit(pretrain_args(plain, a), fsdp=False, log=out / "pretrain.log")
    if rc == 0:
        fpt = model_flops_per_token(plain, a.block_size)
        tps = steady_tokens_per_s(plain)
        attn = AutoModelForCausalLM.from_pretrained(plain).config._attn_implementation
        results["pretrain"] = {
            "seconds": seconds,
            "tokens_per_s": tps,
            "mfu": tps * fpt / peak,
            "attention": attn,
            "mflop_per_token": fpt / 1e6,
        }
        print(f"  {tps:,.0f} tokens/s, MFU {tps * fpt / peak:.1%} ({attn})", flush=True)
    else:
        results["pretrain"] = {"failed": rc}

    print("3. the same under accelerate launch with FSDP2, one process", flush=True)
    sharded = runs / "pretrain-fsdp2"
    rc, seconds = llmkit(pretrain_args(sharded, a), fsdp=True, log=out / "pretrain-fsdp2.log")
    if rc == 0:
        AutoModelForCausalLM.from_pretrained(sharded)  # loads with plain transformers
        tps = steady_tokens_per_s(sharded)
        results["pretrain_fsdp2"] = {"seconds": seconds, "tokens_per_s": tps, "loads": True}
        print(f"  {tps:,.0f} tokens/s; the saved folder loads", flush=True)
    else:
        results["pretrain_fsdp2"] = {"failed": rc}

    print("4. fine-tune under FSDP2 with eval.metric_for_best_model", flush=True)
    tuned = runs / "finetune-fsdp2"
    base = plain if (plain / "model.safetensors").is_file() else sharded
    rc, seconds = llmkit(finetune_args(base, tuned), fsdp=True, log=out / "finetune.log")
    if rc == 0:
        best = json.loads((tuned / "finetune_results.json").read_text())["best"]
        restored = same_weights(base, tuned)
        results["finetune_fsdp2"] = {"seconds": seconds, "best": best, "restored": restored}
        print(f"  best pass {best}; saved weights equal the base's: {restored}", flush=True)
    else:
        results["finetune_fsdp2"] = {"failed": rc}

    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "gpu_check.md").write_text(table(results))
    print(table(results))


def table(r: dict) -> str:
    def cell(step: str, fmt) -> str:
        got = r.get(step, {})
        return f"failed (exit {got['failed']})" if "failed" in got else fmt(got)

    rows = [
        ("bf16 matmul peak", f"{r['bf16_peak_tflops']:,.1f} TFLOP/s"),
        (
            f"pretrain ({r['preset']}, bf16, compile {r['compile']}, sdpa)",
            cell("pretrain", lambda g: f"{g['tokens_per_s']:,.0f} tokens/s, MFU {g['mfu']:.1%}"),
        ),
        (
            "the same under FSDP2 (one process)",
            cell("pretrain_fsdp2", lambda g: f"{g['tokens_per_s']:,.0f} tokens/s, folder loads"),
        ),
        (
            "fine-tune under FSDP2, best pass restored",
            cell("finetune_fsdp2", lambda g: f"best {g['best']}, weights equal: {g['restored']}"),
        ),
    ]
    lines = [f"device: {r['device']}, torch {r['torch']}", "", "| check | result |", "|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} |" for a, b in rows]) + "\n"


if __name__ == "__main__":
    main()
