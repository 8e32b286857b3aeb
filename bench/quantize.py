"""int8 quantization (``llmkit quantize``) against the float32 model: size, speed, quality.

For each model: size on disk, greedy decode tokens/s on this CPU (batch 1; every decoder timed
in turns, medians of --repeats passes), strided validation perplexity (``llmkit evaluate``'s
method) and how many greedy outputs on the sample prompts equal the float32 model's. Each
int8 folder is timed twice: on torchao's own kernel, and as `llmkit generate` runs it on a
CPU, int8-dynamic's one-token decoding calls on fbgemm (same weights; perplexity, computed on
whole windows, is torchao's either way). int8-dynamic is timed with its output head int8
(`llmkit quantize`'s default) and float (``--keep_head_float``).
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
import statistics
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


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and tokens")
    p.add_argument("--steps", type=int, default=60, help="training steps of built models")
    p.add_argument("--new-tokens", type=int, default=64, help="greedy tokens per prompt timed")
    p.add_argument("--repeats", type=int, default=9, help="timed passes of every decoder")
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


#: (label, quantize --method, keep the head float): the head is int8 by default
VARIANTS = (
    ("int8-dynamic", "int8-dynamic", False),
    ("int8-dynamic, head float", "int8-dynamic", True),
    ("int8-weight", "int8-weight", False),
)


@torch.inference_mode()
def decode_speeds(models: dict, tokenizer, new_tokens: int, repeats: int) -> dict[str, list]:
    """Greedy tokens per second of each model (batch 1, the fixed prompts), ``repeats`` passes
    taken in turns after an untimed one: this shared CPU swings by a third from pass to pass,
    and in turns every model sees the same swings."""
    for model in models.values():
        greedy_texts(model.eval(), tokenizer, 8)
    speeds = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            total = sum(len(ids) for ids in greedy_texts(model, tokenizer, new_tokens))
            speeds[name].append(total / (time.perf_counter() - start))
    return speeds


def bench_model(label: str, folder: Path, val: tuple, work: Path, args) -> list[dict]:
    """``val``: (files, split, text column) of held-out text in the model's own domain."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    original = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    models = {"float32": original}
    rows = {"float32": dict(size=size, ppl=None, change=0.0)}
    for name, method, keep_head in VARIANTS:
        with contextlib.redirect_stdout(io.StringIO()):
            out = work / f"{label}-{name}".replace(" ", "_").replace(",", "")
            report = quantize(str(folder), str(out), method, False, *val, keep_head_float=keep_head)
        rows["float32"]["ppl"] = report["perplexity_original"]
        quality = dict(size=report["size_bytes"], ppl=report["perplexity"],
                       change=report["perplexity_change"], head=report["head"])  # fmt: skip
        models[f"{name} (torchao)"] = AutoModelForCausalLM.from_pretrained(out).eval()
        rows[f"{name} (torchao)"] = dict(quality)
        fast = AutoModelForCausalLM.from_pretrained(out).eval()
        if use_fast_int8(fast):  # what `llmkit generate` does with this folder on a CPU
            models[f"{name} (decode on fbgemm)"] = fast
            rows[f"{name} (decode on fbgemm)"] = dict(quality)
    models["quantize_dynamic (torch.ao, not saveable)"] = torch.ao.quantization.quantize_dynamic(
        original, {torch.nn.Linear}, dtype=torch.qint8
    )
    rows["quantize_dynamic (torch.ao, not saveable)"] = dict(size=None, ppl=None, change=None)
    reference = greedy_texts(original, tokenizer)
    for name, row in rows.items():  # each decoder as timed, against the float32 model
        same = sum(a == b for a, b in zip(reference, greedy_texts(models[name], tokenizer)))
        row["greedy"] = f"{same}/{len(PROMPTS)}"
    print(f"  timing {len(models)} decoders in turns, {args.repeats} passes ...", flush=True)
    speeds = decode_speeds(models, tokenizer, args.new_tokens, args.repeats)
    base = statistics.median(speeds["float32"])
    return [
        dict(
            row,
            model=label,
            method=name,
            speed=statistics.median(speeds[name]),
            ratio=statistics.median(speeds[name]) / base,
            best=max(speeds[name]) / max(speeds["float32"]),
        )
        for name, row in rows.items()
    ]


def main() -> None:
    args = parse_args()
    steps = 40 if args.quick else args.steps
    if args.quick:
        args.new_tokens, args.repeats = 16, 3
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
            rows += bench_model(label, folder, held, work, args)
            print_table(rows)  # so far: the small model takes a while


def print_table(rows: list[dict]) -> None:
    head = f"{'model':<22} {'method':<48} {'head':<6} {'MiB':>7} {'tok/s':>7} {'x fp32':>7} "
    head += f"{'best x':>7} {'val ppl':>9} {'ppl change':>10} {'greedy':>7}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        size = f"{r['size'] / 2**20:7.2f}" if r["size"] else f"{'-':>7}"
        ppl = f"{r['ppl']:9.3f}" if r["ppl"] else f"{'-':>9}"
        change = f"{r['change']:+10.2%}" if r["change"] is not None else f"{'-':>10}"
        kind = r.get("head", "float" if r["method"] == "float32" else "int8").split()[0]
        print(
            f"{r['model']:<22} {r['method']:<48} {kind:<6} {size} {r['speed']:7.1f} "
            f"{r['ratio']:6.2f}x {r['best']:6.2f}x {ppl} {change} {r['greedy']:>7}"
        )
    print("tok/s and x fp32: medians of the timed passes; best x: best pass over best pass")


if __name__ == "__main__":
    main()
