"""Pretraining throughput: llmkit's loop vs a plain transformers.Trainer, same model and data.

Both train the same freshly initialised model (same seed) on the same packed blocks for the
same number of steps, in this one invocation. Prints tokens/s for each, their ratio, and MFU
against a matmul peak measured here too. The last row is llmkit's defaults (``auto``
precision and compile, settled on this machine as a run of that length would settle them,
compile time included when it compiles). The row "llmkit, model's loss" is llmkit with
``train.chunked_loss: false`` (transformers' own cross-entropy), to measure that on its own.

Sequential runs of a few minutes on a shared 2-core VM move by up to a fifth, more than the
gaps this bench is for; ``--pairs N`` runs the Trainer and the defaults N times in turns and
prints the median and range of the N paired ratios, which a slow spell touches on both sides.

    python bench/pretrain_throughput.py                 # fp32 both, llmkit bf16, llmkit defaults
    python bench/pretrain_throughput.py --steps 300     # the length of `make pretrain`
    python bench/pretrain_throughput.py --steps 20 --preset tiny --precision bf16
    python bench/pretrain_throughput.py --steps 100 --no-bf16      # the rows that train in fp32
    python bench/pretrain_throughput.py --steps 300 --no-bf16 --pairs 3   # defaults vs Trainer x3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainingArguments

from llmkit.config import DataConfig, ModelConfig, TokenizerConfig, TrainConfig
from llmkit.data.pack import BlockDataset
from llmkit.data.prepare import prepare_data
from llmkit.models.load import build_model
from llmkit.training.loop import make_accelerator, tokens_per_step, train
from llmkit.training.precision import cpu_probe, settle, step_flops

ROOT = Path(__file__).resolve().parents[1]


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 6) -> float:
    """Dense n x n GFLOP/s; a dtype with no fast kernel here (bf16 on an AVX2-only CPU, ~100x
    slower than fp32) is measured on one small product instead of minutes of large ones."""
    small = torch.randn(n // 8, n // 8, dtype=dtype)
    small @ small  # a first call pays for thread start-up (17 ms for fp32 here)
    seconds = float("inf")
    for _ in range(3):  # best of three: one warm fp32 call once took 8 ms (MFU read 3,000%)
        start = time.perf_counter()
        small @ small
        seconds = min(seconds, time.perf_counter() - start)
    if seconds > 0.005:  # under 7 GFLOP/s; warm fp32 takes ~0.3 ms, AVX2-only bf16 23 ms
        return 2 * (n // 8) ** 3 / seconds
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start)


def flops_per_token(model: torch.nn.Module, seq: int) -> float:
    """6N for the weights multiplied per token (the input embeddings are a lookup, the output
    head a product even when tied to them) plus attention."""
    c = model.config
    n = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings().weight
    if head is model.get_input_embeddings().weight:  # tied: counted once above, then removed
        n += head.numel()
    return 6 * n + 12 * c.num_hidden_layers * c.hidden_size * seq


def run_llmkit(model, data, cfg: TrainConfig, out: Path, compile_key: str | None = None) -> float:
    accelerator = make_accelerator(cfg)
    start = time.perf_counter()
    result = train(model, data, cfg, out, accelerator, desc="llmkit", compile_key=compile_key)
    seconds = time.perf_counter() - start
    return result.tokens_seen / seconds


def run_trainer(model, data, cfg: TrainConfig, out: Path) -> float:
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=round(cfg.warmup_ratio * cfg.max_steps),
        lr_scheduler_type="cosine",
        max_grad_norm=cfg.max_grad_norm,
        bf16=cfg.mixed_precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        seed=cfg.seed,
        disable_tqdm=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return cfg.max_steps * cfg.per_device_train_batch_size * data.blocks.shape[1] / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument(
        "--precision",
        default="no",
        choices=["no", "bf16"],
        help="precision of the head-to-head run (both sides)",
    )
    p.add_argument("--no-bf16", action="store_true", help="skip the llmkit bf16 row (fp32 runs)")
    p.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="run the Trainer and the defaults this many times in turns; median paired ratio",
    )
    p.add_argument("--data", default=str(ROOT / "data" / "pretrain" / "corpus.jsonl"))
    args = p.parse_args()
    if args.pairs < 1:
        p.error("--pairs must be at least 1")

    data_cfg = DataConfig(
        train_files=[args.data],
        block_size=args.block_size,
        cache_dir=str(ROOT / ".cache" / "llmkit"),
    )
    prepared = prepare_data(data_cfg, TokenizerConfig(vocab_size=4096))
    blocks = BlockDataset(prepared.splits["train"])
    train_cfg = TrainConfig(
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        eval_steps=0,
        report_to=[],
        mixed_precision=args.precision,
        torch_compile="false",
        logging_steps=10,
    )

    def fresh():
        return build_model(ModelConfig(preset=args.preset), prepared.tokenizer, seed=0)

    model = fresh()
    fpt = flops_per_token(model, args.block_size)
    peaks = {"no": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    settled = settle(
        TrainConfig(max_steps=args.steps, per_device_train_batch_size=args.batch_size),
        flops_per_step=step_flops(model, tokens_per_step(train_cfg, args.block_size)),
        model=model,  # a compile Inductor's cache holds (an earlier compiled run) costs less
        sequence_length=args.block_size,
    )
    defaults = TrainConfig(
        **{
            **train_cfg.__dict__,
            "mixed_precision": settled.train.mixed_precision,
            "torch_compile": settled.train.torch_compile,
        }
    )
    rows = []
    trainer_runs, auto_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:

        def pair(n: int) -> None:
            """The Trainer, then the defaults: one paired ratio."""
            trainer_runs.append(run_trainer(fresh(), blocks, train_cfg, Path(tmp) / f"t-{n}"))
            out = Path(tmp) / f"auto-{n}"
            auto_runs.append(run_llmkit(fresh(), blocks, defaults, out, settled.compile_key))

        pair(0)
        llmkit_tps = run_llmkit(fresh(), blocks, train_cfg, Path(tmp) / "llmkit")
        rows.append(("transformers.Trainer", args.precision, trainer_runs[0]))
        rows.append(("llmkit", args.precision, llmkit_tps))
        # the chunked cross-entropy measured on its own: the same run with the model's loss
        plain = TrainConfig(**{**train_cfg.__dict__, "chunked_loss": False})
        rows.append(
            (
                "llmkit, model's loss",
                args.precision,
                run_llmkit(fresh(), blocks, plain, Path(tmp) / "plain"),
            )
        )
        with_bf16 = args.precision == "no" and not args.no_bf16
        if with_bf16 and peaks["bf16"] < peaks["no"] / 4:
            print(
                f"llmkit bf16 row skipped: bf16 matmuls run at {peaks['bf16'] / 1e9:.2g} vs "
                f"fp32 {peaks['no'] / 1e9:,.0f} GFLOP/s here (no bf16 kernel), hours for this run"
            )
        elif with_bf16:
            bf16 = TrainConfig(**{**train_cfg.__dict__, "mixed_precision": "bf16"})
            rows.append(("llmkit", "bf16", run_llmkit(fresh(), blocks, bf16, Path(tmp) / "bf16")))
        for n in range(1, args.pairs):
            pair(n)
    trainer_tps, auto = statistics.median(trainer_runs), statistics.median(auto_runs)
    rows[0] = ("transformers.Trainer", args.precision, trainer_tps)
    rows.append(("llmkit defaults (auto)", defaults.mixed_precision, auto))

    params = sum(p.numel() for p in model.parameters())
    print(
        f"\nmodel: {args.preset}, {params / 1e6:.1f}M parameters; block {args.block_size}, "
        f"batch {args.batch_size}, {args.steps} steps; {torch.get_num_threads()} threads"
    )
    print(
        f"matmul peak: fp32 {peaks['no'] / 1e9:,.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:,.0f} "
        f"GFLOP/s; {fpt / 1e6:.1f} MFLOP per token"
    )
    probe = cpu_probe() if not torch.cuda.is_available() else None
    if probe is not None:
        print(f"llmkit's cached probe: {probe.machine}")
    print(settled.describe())
    print(f"{'run':<24}{'precision':>10}{'tokens/s':>12}{'MFU':>8}{'vs Trainer':>12}")
    for name, prec, tps in rows:
        mfu = tps * fpt / peaks[prec]
        print(f"{name:<24}{prec:>10}{tps:>12,.0f}{mfu:>8.1%}{tps / trainer_tps:>11.2f}x")
    if args.pairs > 1:
        ratios = sorted(a / t for a, t in zip(auto_runs, trainer_runs))
        print(
            f"(Trainer and defaults: medians of {args.pairs} runs in turns) defaults vs Trainer "
            f"per pair: median {statistics.median(ratios):.2f}x, "
            f"{ratios[0]:.2f}-{ratios[-1]:.2f}x; Trainer "
            + ", ".join(f"{t:,.0f}" for t in trainer_runs)
            + "; defaults "
            + ", ".join(f"{a:,.0f}" for a in auto_runs)
            + " tokens/s"
        )
    fastest, best = max((tps, prec) for name, prec, tps in rows if name == "llmkit")
    print(f"defaults vs the fastest explicit llmkit precision: {auto / fastest:.3f}x")
    if best == defaults.mixed_precision and defaults.torch_compile == "false":
        # the same settings twice: their gap is how much this machine varies between runs
        print(f"(the defaults settled on the {best} row's own settings: the gap is run-to-run)")


if __name__ == "__main__":
    main()
