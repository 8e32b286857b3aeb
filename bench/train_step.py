"""Training steps interleaved: the model's own cross-entropy vs llmkit's chunked one, eager vs
torch.compile.

One model, one batch, the same optimizer: blocks of steps alternate between the variants, so
all see the same machine (a 2-core VM here moves by a fifth between runs). Prints the median
and range of each variant's per-block speedup over the first, and for compiled variants the
seconds their first two steps took (the compile; cold only for the first compiled variant, as
later ones reuse Inductor's in-process caches: run it alone to time it).

    .venv/bin/python bench/train_step.py                        # model's loss vs chunked, tiny
    .venv/bin/python bench/train_step.py --preset small --vocab 8192 --pairs 5 --steps 2
    .venv/bin/python bench/train_step.py --variants eager-chunked,compiled-chunked
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llmkit.models.presets import PRESETS
from llmkit.training.loss import causal_lm_loss

VARIANTS = ("eager-model", "eager-chunked", "compiled-model", "compiled-chunked")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--pairs", type=int, default=10, help="rounds over the variants")
    p.add_argument("--steps", type=int, default=3, help="steps per timed block")
    p.add_argument("--precision", default="no", choices=["no", "bf16"])
    p.add_argument(
        "--variants",
        default="eager-model,eager-chunked",
        help=f"comma-separated, the first is the baseline; of {', '.join(VARIANTS)}",
    )
    args = p.parse_args()
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        p.error(f"unknown --variants {', '.join(sorted(unknown))}; choose from {VARIANTS}")

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=args.vocab, **PRESETS.get(args.preset)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(0, args.vocab, (args.batch_size, args.block_size))
    batch = {"input_ids": ids, "labels": ids}
    n = torch.tensor(args.batch_size * (args.block_size - 1))
    # the compiled module shares the eager one's weights, so the variants train one model
    compiled = torch.compile(model) if any(v.startswith("compiled") for v in variants) else None

    def step(variant: str) -> None:
        net = compiled if variant.startswith("compiled") else model
        with torch.autocast("cpu", torch.bfloat16, enabled=args.precision == "bf16"):
            if variant.endswith("chunked"):
                loss = causal_lm_loss(net, dict(batch), n)
            else:
                loss = net(**batch, num_items_in_batch=n).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    warmup = {}
    for variant in variants:
        start = time.perf_counter()
        step(variant)
        step(variant)
        warmup[variant] = time.perf_counter() - start
    seconds = {v: [] for v in variants}
    for _ in range(args.pairs):
        for variant in variants:
            start = time.perf_counter()
            for _ in range(args.steps):
                step(variant)
            seconds[variant].append((time.perf_counter() - start) / args.steps)
    print(
        f"{args.preset} preset, vocabulary {args.vocab}, batch {args.batch_size} x "
        f"{args.block_size}, {args.precision}, {torch.get_num_threads()} threads"
    )
    base = variants[0]
    for variant in variants:
        ratios = [a / b for a, b in zip(seconds[base], seconds[variant])]
        first = f"; first two steps {warmup[variant]:.1f} s" if "compiled" in variant else ""
        print(
            f"{variant:<17} {statistics.median(seconds[variant]) * 1000:7.0f} ms a step; "
            f"{statistics.median(ratios):.2f}x {base} (range {min(ratios):.2f}-"
            f"{max(ratios):.2f}x over {args.pairs}){first}"
        )


if __name__ == "__main__":
    main()
