"""Training steps with the model's own cross-entropy vs llmkit's chunked one, interleaved.

One model, one batch, the same optimizer: blocks of steps alternate between the two losses, so
both see the same machine (a 2-core VM here moves by a fifth between runs). Prints the median
and range of the per-pair speedup.

    .venv/bin/python bench/chunked_loss.py                               # tiny, 4k vocabulary
    .venv/bin/python bench/chunked_loss.py --preset small --vocab 8192 --pairs 5 --steps 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llmkit.models.presets import PRESETS
from llmkit.training.loss import causal_lm_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--steps", type=int, default=3, help="steps per timed block")
    p.add_argument("--precision", default="no", choices=["no", "bf16"])
    args = p.parse_args()

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=args.vocab, **PRESETS.get(args.preset)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(0, args.vocab, (args.batch_size, args.block_size))
    batch = {"input_ids": ids, "labels": ids}
    n = torch.tensor(args.batch_size * (args.block_size - 1))

    def step(chunked: bool) -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=args.precision == "bf16"):
            if chunked:
                loss = causal_lm_loss(model, dict(batch), n)
            else:
                loss = model(**batch, num_items_in_batch=n).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    seconds = {False: [], True: []}
    for chunked in (False, True):
        step(chunked)  # warm-up
    for _ in range(args.pairs):
        for chunked in (False, True):
            start = time.perf_counter()
            for _ in range(args.steps):
                step(chunked)
            seconds[chunked].append((time.perf_counter() - start) / args.steps)
    ratios = [a / b for a, b in zip(seconds[False], seconds[True])]
    print(
        f"{args.preset} preset, vocabulary {args.vocab}, batch {args.batch_size} x "
        f"{args.block_size}, {args.precision}, {torch.get_num_threads()} threads"
    )
    for chunked, name in ((False, "model's loss"), (True, "chunked loss")):
        print(f"{name:<14} {statistics.median(seconds[chunked]) * 1000:8.0f} ms a step (median)")
    print(
        f"speedup: {statistics.median(ratios):.2f}x (median of {args.pairs} pairs; "
        f"range {min(ratios):.2f}-{max(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
