"""int8 quantization (``llmkit quantize``) against the float32 model: size, speed, quality.

For each model: size on disk, greedy decode tokens/s on this CPU (batch 1), strided validation
perplexity (``llmkit evaluate``'s method) and how many greedy outputs on the sample prompts
equal the float32 model's. The int8-dynamic folder is timed twice: on torchao's own kernel, and
as `llmkit generate` runs it on a CPU, its one-token decoding calls on fbgemm (same weights;
perplexity, computed on whole windows, is torchao's either way).
``torch.ao.quantization.quantize_dynamic`` is timed as a baseline: fbgemm for every call,
output head included, but its result cannot be saved with save_pretrained.

Models: the `make pretrain` model (runs/pretrain-tiny) when it exists (perplexity on the
embedded summarization test documents), else a `tiny`-preset model, and a `small`-preset
model, both trained here for --steps AdamW steps on Tiny Shakespeare with a BPE tokenizer
trained here; nothing is downloaded.
Run: ``python bench/quantize.py [--quick]``. The goal (issue 18): int8 >= 1.5x decode
tokens/s with <= 2% perplexity increase.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from llmkit.data.tokenizer import train_tokenizer
from llmkit.export.compare import PROMPTS, greedy_texts
from llmkit.export.int8_kernels import use_fast_int8
from llmkit.models.presets import PRESETS
from llmkit.pipelines.quantize import run as quantize

TEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tinyshakespeare.txt"
RUN = Path(__file__).resolve().parents[1] / "runs" / "pretrain-tiny"
SUMMARIES = Path(__file__).resolve().parents[1] / "data" / "tasks" / "summarization"
METHODS = ("int8-dynamic", "int8-weight")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and tokens")
    p.add_argument("--steps", type=int, default=60, help="training steps of built models")
    p.add_argument("--new-tokens", type=int, default=48, help="greedy tokens per prompt timed")
    p.add_argument("--models", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    return p.parse_args()


def build(preset: str, text: str, steps: int, folder: Path) -> Path:
    """A preset model trained briefly: AdamW 3e-3, 8 x 128-token windows per step."""
    vocab = {"tiny": 4096, "small": 8192}[preset]
    tokenizer = train_tokenizer([text[:300_000]], vocab_size=vocab)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **PRESETS.get(preset)))
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.config, name, getattr(tokenizer, name))
    ids = torch.tensor(tokenizer(text)["input_ids"])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 129, (8,), generator=gen).tolist()
        batch = torch.stack([ids[s : s + 128] for s in starts])
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@torch.inference_mode()
def decode_speed(model, tokenizer, new_tokens: int) -> float:
    """Greedy tokens per second, batch 1, over the fixed prompts: a short untimed pass, then
    the best of three (the first call of a model runs cold, and a shared CPU swings)."""
    model.eval()
    greedy_texts(model, tokenizer, 8)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        total = sum(len(ids) for ids in greedy_texts(model, tokenizer, new_tokens))
        best = max(best, total / (time.perf_counter() - start))
    return best


def bench_model(label: str, folder: Path, val: tuple, work: Path, new_tokens: int) -> list[dict]:
    """``val``: (files, split, text column) of held-out text in the model's own domain."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    original = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    base_speed = decode_speed(original, tokenizer, new_tokens)
    reference = greedy_texts(original.eval(), tokenizer)
    print(f"  float32: {base_speed:.1f} tokens/s", flush=True)
    rows, ppl = [], None
    for method in METHODS:
        with contextlib.redirect_stdout(io.StringIO()):
            report = quantize(str(folder), str(work / f"{label}-{method}"), method, False, *val)
        ppl = report["perplexity_original"]
        model = AutoModelForCausalLM.from_pretrained(work / f"{label}-{method}")
        speed = decode_speed(model, tokenizer, new_tokens)
        print(f"  {method}: {speed:.1f} tokens/s", flush=True)
        rows.append(
            dict(
                model=label,
                method=f"{method} (torchao)",
                size=report["size_bytes"],
                speed=speed,
                ratio=speed / base_speed,
                ppl=report["perplexity"],
                change=report["perplexity_change"],
                greedy=f"{report['greedy_match']}/{report['prompts']}",
            )
        )
        if use_fast_int8(model):  # what `llmkit generate` does with this folder on a CPU
            speed = decode_speed(model, tokenizer, new_tokens)
            print(f"  {method} + fbgemm decoding: {speed:.1f} tokens/s", flush=True)
            same = sum(a == b for a, b in zip(reference, greedy_texts(model, tokenizer)))
            rows.append(
                dict(rows[-1], method=f"{method} (decode on fbgemm)", speed=speed,
                     ratio=speed / base_speed, greedy=f"{same}/{len(PROMPTS)}")
            )  # fmt: skip
    dyn = torch.ao.quantization.quantize_dynamic(original, {torch.nn.Linear}, dtype=torch.qint8)
    speed = decode_speed(dyn, tokenizer, new_tokens)
    rows.append(
        dict(model=label, method="quantize_dynamic (torch.ao, not saveable)", size=None,
             speed=speed, ratio=speed / base_speed, ppl=None, change=None, greedy="-")
    )  # fmt: skip
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    base = dict(model=label, method="float32", size=size, speed=base_speed, ratio=1.0, ppl=ppl,
                change=0.0, greedy=f"{len(PROMPTS)}/{len(PROMPTS)}")  # fmt: skip
    return [base, *rows]


def main() -> None:
    args = parse_args()
    steps = 40 if args.quick else args.steps
    new_tokens = 16 if args.quick else args.new_tokens
    text = TEXT.read_text()
    train, held_out = text[: int(len(text) * 0.9)], text[int(len(text) * 0.9) :]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        val = work / "val"
        val.mkdir()
        (val / "validation.txt").write_text(held_out[: 8_000 if args.quick else 20_000])
        for preset in args.models:
            if preset == "tiny" and (RUN / "config.json").is_file():
                folder, label = RUN, "tiny (make pretrain)"
                # documents of the world the embedded corpus describes, not trained on
                held = ([str(SUMMARIES)], "test", "document")
            else:
                print(f"training a {preset}-preset model for {steps} steps ...", flush=True)
                start = time.perf_counter()
                folder, label = (
                    build(preset, train, steps, work / preset),
                    f"{preset} ({steps} steps)",
                )
                print(f"  {time.perf_counter() - start:.0f} s", flush=True)
                held = ([str(val)], "validation", "text")
            rows += bench_model(label, folder, held, work, new_tokens)
            print_table(rows)  # so far: the small model takes a while


def print_table(rows: list[dict]) -> None:
    head = f"{'model':<22} {'method':<42} {'MiB':>7} {'tok/s':>7} {'x fp32':>7} "
    head += f"{'val ppl':>9} {'ppl change':>10} {'greedy':>7}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        size = f"{r['size'] / 2**20:7.2f}" if r["size"] else f"{'-':>7}"
        ppl = f"{r['ppl']:9.3f}" if r["ppl"] else f"{'-':>9}"
        change = f"{r['change']:+10.2%}" if r["change"] is not None else f"{'-':>10}"
        print(
            f"{r['model']:<22} {r['method']:<42} {size} {r['speed']:7.1f} {r['ratio']:6.2f}x "
            f"{ppl} {change} {r['greedy']:>7}"
        )


if __name__ == "__main__":
    main()
