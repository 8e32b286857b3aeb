"""Throughput of llmkit's evaluation loops against bare transformers loops.

(a) ``perplexity``: tokens scored per second vs a bare batched ``model(input_ids)`` loop over
    the same windows (no scoring at all), so the difference is llmkit's overhead.
    llmkit asks the model for logits only where it scores (``logits_to_keep``), so a second
    baseline does the same to show the cost of the scoring itself.
(b) ``generate_texts``: examples per second, batched, vs one-at-a-time ``model.generate``.

Builds a ~5M-parameter Llama from a config and a BPE tokenizer trained here on Tiny
Shakespeare; nothing is downloaded. Run: ``python bench/eval_throughput.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from llmkit.data.tokenizer import train_tokenizer
from llmkit.evaluation.perplexity import perplexity
from llmkit.generation.batched import generate_texts

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tinyshakespeare.txt"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer tokens and prompts (~20 s)")
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8, help="perplexity windows per batch")
    p.add_argument("--gen-batch-size", type=int, default=16)
    return p.parse_args()


def build_model(vocab_size: int, max_positions: int) -> LlamaForCausalLM:
    """About 5M parameters: big enough that the forward, not Python, dominates."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=max_positions,
    )
    return LlamaForCausalLM(cfg).eval()


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bare_windows(n_tokens: int, context: int, stride: int) -> list[tuple[int, int]]:
    """The (start, stop) input spans llmkit scores, derived here on their own."""
    spans, start = [], 0
    while True:
        stop = min(start + context, n_tokens - 1)
        spans.append((start, stop))
        if stop == n_tokens - 1:
            return spans
        start += stride


def bare_forward_loop(
    model, ids: torch.Tensor, spans, batch_size: int, only_scored: bool = False
) -> None:
    """Same windows, same batch size, forward only; ragged tail windows run unpadded.

    ``only_scored`` asks for logits only at the positions llmkit scores (as llmkit does), so
    the comparison isolates the cost of scoring from the cost of the lm_head.
    """
    width = spans[0][1] - spans[0][0]
    new = [b - a if i == 0 else b - spans[i - 1][1] for i, (a, b) in enumerate(spans)]
    full = [i for i, (a, b) in enumerate(spans) if b - a == width]
    tail = range(len(full), len(spans))
    with torch.inference_mode():
        for k in range(0, len(full), batch_size):
            rows = full[k : k + batch_size]
            x = torch.stack([ids[spans[i][0] : spans[i][1]] for i in rows])
            keep = max(new[i] for i in rows) if only_scored else 0
            model(input_ids=x, use_cache=False, logits_to_keep=keep)
        for i in tail:
            a, b = spans[i]
            keep = new[i] if only_scored else 0
            model(input_ids=ids[None, a:b], use_cache=False, logits_to_keep=keep)


def bench_perplexity(model, ids: torch.Tensor, args, repeats: int) -> dict:
    """Best of ``repeats`` interleaved runs, so drifting machine load hits both alike."""
    spans = bare_windows(len(ids), args.context, args.stride)
    run_llmkit = partial(
        perplexity,
        model,
        ids,
        context_length=args.context,
        stride=args.stride,
        batch_size=args.batch_size,
    )
    runs = {
        "llmkit": run_llmkit,
        "bare": partial(bare_forward_loop, model, ids, spans, args.batch_size),
        "bare_scored": partial(bare_forward_loop, model, ids, spans, args.batch_size, True),
    }
    for fn in runs.values():  # warm-up
        timed(fn)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    best = {name: min(t) for name, t in times.items()}
    scored = len(ids) - 1
    return (
        {"windows": len(spans)}
        | {name: scored / t for name, t in best.items()}
        | {
            "overhead_pct": 100 * (best["llmkit"] / best["bare"] - 1),
            "overhead_scored_pct": 100 * (best["llmkit"] / best["bare_scored"] - 1),
        }
    )


def one_at_a_time(model, tokenizer: PreTrainedTokenizerFast, prompts, max_new: int) -> None:
    """The baseline: plain model.generate per prompt, no padding."""
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([tokenizer(prompt)["input_ids"]])
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )


def bench_generation(model, tokenizer, prompts: list[str], max_new: int, batch: int) -> dict:
    """One run each: generation is long enough that one run is stable."""
    one_at_a_time(model, tokenizer, prompts[:2], 4)  # warm-up
    t_batched = timed(
        partial(generate_texts, model, tokenizer, prompts, max_new_tokens=max_new, batch_size=batch)
    )
    t_single = timed(partial(one_at_a_time, model, tokenizer, prompts, max_new))
    return {
        "batched": len(prompts) / t_batched,
        "single": len(prompts) / t_single,
        "speedup": t_single / t_batched,
    }


def make_prompts(text: str, count: int) -> list[str]:
    """Prompts of 1 to 4 consecutive non-empty lines, so lengths vary within a batch."""
    lines = [line for line in text[200_000:].splitlines() if line.strip()]
    return ["\n".join(lines[3 * i : 3 * i + 1 + i % 4]) for i in range(count)]


def print_table(rows: list[tuple[str, ...]]) -> None:
    """First column left-aligned, numbers right-aligned, a rule under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        print("  ".join(cells))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    args = parse_args()
    n_tokens, repeats = (6_000, 1) if args.quick else (24_000, 2)
    n_prompts, max_new = (16, 16) if args.quick else (64, 32)

    t0 = time.perf_counter()
    text = TEXT.read_text()
    tokenizer = train_tokenizer([text], vocab_size=4096)
    model = build_model(len(tokenizer), max_positions=max(512, args.context))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens])
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model {params / 1e6:.1f}M params, vocab {len(tokenizer)}, torch threads "
        f"{torch.get_num_threads()}, setup {time.perf_counter() - t0:.1f}s"
    )

    ppl = bench_perplexity(model, ids, args, repeats)
    prompts = make_prompts(text, n_prompts)
    gen = bench_generation(model, tokenizer, prompts, max_new, args.gen_batch_size)

    print(
        f"perplexity: {len(ids)} tokens, context {args.context}, stride {args.stride}, "
        f"{ppl['windows']} windows, batch {args.batch_size}"
    )
    print(
        f"generation: {n_prompts} prompts, {max_new} new tokens, batch {args.gen_batch_size} vs 1\n"
    )
    print_table(
        [
            ("measure", "llmkit", "baseline", "llmkit vs baseline"),
            (
                "perplexity tokens/s",
                f"{ppl['llmkit']:,.0f}",
                f"{ppl['bare']:,.0f}",
                f"{ppl['overhead_pct']:+.1f}% time",
            ),
            (
                "  same, baseline with logits_to_keep",
                f"{ppl['llmkit']:,.0f}",
                f"{ppl['bare_scored']:,.0f}",
                f"{ppl['overhead_scored_pct']:+.1f}% time",
            ),
            (
                "generation examples/s",
                f"{gen['batched']:.2f}",
                f"{gen['single']:.2f}",
                f"{gen['speedup']:.1f}x faster",
            ),
        ]
    )
    print(f"\ntotal {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()
