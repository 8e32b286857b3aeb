"""Speculative decoding on this CPU: target alone vs + distilled draft vs prompt lookup.

One invocation: pretrain a target (``small`` preset by default) on the embedded corpus for
``--target-steps``, distill a draft from it (``llmkit distill``, 1 layer), then generate greedily
(128 new tokens, batch 1) on QA prompts (data/tasks/qa: context + question, so prompt lookup
has text to copy) three ways (the draft twice: the target verifying on torch's linear and on
MKL's packed GEMM, ``llmkit generate``'s default on a CPU where it measures faster), ``--passes``
times in turns, printing median tokens/s, the median
and range of the per-pass speedups, acceptance, whether every output is identical to the
target's own, and where a round's time goes (inside the target's forward, inside the draft's,
and the rest: transformers' own per-round work). Run folders are reused when present (delete
runs/bench-spec to retrain). Training measured on an idle 2-core CPU: `small` target 9-14 min,
its draft 10.5-11 min; three passes of the generation runs take 1.5 min. `--preset base`:
target 33 min, its draft 40 min, the generation runs about 6 min.

    .venv/bin/python bench/speculative.py [--target-steps 300 --draft-steps 300 --prompts 8]
    .venv/bin/python bench/speculative.py --target runs/pretrain-reader   # draft for your model
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import time
from pathlib import Path

from llmkit.cli import main as llmkit
from llmkit.evaluation.load import load_for_evaluation
from llmkit.generation.batched import generate_records
from llmkit.generation.options import Throughput
from llmkit.generation.packed_verify import pack_for_verification, unpack
from llmkit.generation.speculative import acceptance, count_forwards, draft_kwargs

ROOT = Path(__file__).resolve().parents[1]
DRAFT_ALONE = "draft alone"
RUNS = ROOT / "runs" / "bench-spec"
DRAFT = (
    "{hidden_size: 256, intermediate_size: 688, num_hidden_layers: 1, num_attention_heads: 4, "
    "num_key_value_heads: 4}"
)


def train(args) -> tuple[Path, Path]:
    shape = hashlib.sha1(args.draft_config.encode()).hexdigest()[:6]  # another shape, new draft
    if args.target:  # a model the user already has (e.g. runs/pretrain-reader): draft only
        target = Path(args.target)
        draft = RUNS / f"draft-{target.name}-{shape}-{args.draft_steps}"
    else:
        target = RUNS / f"target-{args.preset}-{args.target_steps}"
        draft = RUNS / f"draft-{target.name}-{shape}-{args.draft_steps}"  # one per target
    common = [
        "--data.train_files",
        str(ROOT / "data/pretrain/corpus.jsonl"),
        "--data.block_size",
        "256",
        "--train.per_device_train_batch_size",
        "16",
        "--train.mixed_precision",
        "auto",
        "--train.eval_steps",
        "0",
        "--train.eval_max_batches",
        "4",
        "--train.report_to",
        "none",
    ]
    t0 = time.perf_counter()
    if not (target / "model.safetensors").exists():
        assert (
            llmkit(
                [
                    "pretrain",
                    "--output_dir",
                    str(target),
                    "--overwrite",
                    "--model.preset",
                    args.preset,
                    "--tokenizer.vocab_size",
                    "4096",
                    "--train.max_steps",
                    str(args.target_steps),
                    "--train.learning_rate",
                    "1e-3",
                    *common,
                ]
            )
            == 0
        )
    t1 = time.perf_counter()
    if not (draft / "model.safetensors").exists():
        assert (
            llmkit(
                [
                    "distill",
                    "--teacher",
                    str(target),
                    "--output_dir",
                    str(draft),
                    "--overwrite",
                    "--model.config_overrides",
                    args.draft_config,
                    "--distill.alpha",
                    "0.9",
                    "--distill.temperature",
                    "1.0",
                    "--train.max_steps",
                    str(args.draft_steps),
                    "--train.learning_rate",
                    "3e-3",
                    *common,
                ]
            )
            == 0
        )
    print(f"training: target {t1 - t0:.0f} s, draft {time.perf_counter() - t1:.0f} s (0 = reused)")
    return target, draft


def qa_prompts(n: int) -> list[str]:
    rows = [
        json.loads(line) for line in (ROOT / "data/tasks/qa/test.jsonl").read_text().splitlines()
    ]
    return [f"{r['context']}\nQuestion: {r['question']}\nAnswer:" for r in rows[:n]]


def run(model, tok, prompts, new, **kwargs) -> tuple[list, dict]:
    """Greedy records, and the seconds spent inside the target's and the draft's forwards."""
    draft = kwargs.get("assistant_model")
    with (
        timed_forwards(model) as target_s,
        timed_forwards(draft) as draft_s,
        count_forwards(draft) if draft is not None else contextlib.nullcontext() as counter,
    ):
        records = generate_records(
            model,
            tok,
            prompts,
            max_new_tokens=new,
            batch_size=1,
            draft_counter=counter,
            min_new_tokens=new,
            **kwargs,
        )
    return records, {"target": target_s(), "draft": draft_s()}


@contextlib.contextmanager
def timed_forwards(model):
    """Seconds inside ``model``'s forward calls while open (0 for no model): what is left of a
    run's time is transformers' own per-step and per-round work."""
    spent, start = [0.0], [0.0]
    if model is None:
        yield lambda: 0.0
        return

    def before(*_):
        start[0] = time.perf_counter()

    def after(*_):
        spent[0] += time.perf_counter() - start[0]

    handles = [model.register_forward_pre_hook(before), model.register_forward_hook(after)]
    try:
        yield lambda: spent[0]
    finally:
        for h in handles:
            h.remove()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--target", help="an existing model folder to use as the target (no training)")
    p.add_argument("--target-steps", type=int, default=300)
    p.add_argument("--draft-steps", type=int, default=300)
    p.add_argument("--draft-config", default=DRAFT, help="the draft's model.config_overrides")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--draft-tokens", type=int, default=5)
    p.add_argument("--confidence", type=float, default=0.0, help="assistant_confidence_threshold")
    p.add_argument("--lookup", type=int, default=10)
    p.add_argument("--passes", type=int, default=3, help="passes of every run, taken in turns")
    args = p.parse_args()
    target_dir, draft_dir = train(args)
    target = load_for_evaluation(str(target_dir), show_progress=False)
    draft = load_for_evaluation(str(draft_dir), show_progress=False)
    prompts, tok = qa_prompts(args.prompts), target.tokenizer
    print(
        f"target {target.parameters:,} params, draft {draft.parameters:,}; {len(prompts)} QA "
        f"prompts, greedy, {args.new_tokens} new tokens, batch 1, fp32, {args.passes} passes "
        f"in turns; load average {os.getloadavg()[0]:.1f} (timings assume an otherwise idle "
        "machine)"
    )
    dk = draft_kwargs(
        target.model,
        tok,
        draft.model,
        draft.tokenizer,
        num_tokens=args.draft_tokens,
        schedule="constant",
        confidence=args.confidence,
        where=str(draft_dir),
    )
    rows = args.draft_tokens + 1
    packing = pack_for_verification(target.model, rows, min_gain=0)  # its figures, printed
    unpack(target.model)
    if packing is None:
        print("no packed verification here (no MKL, or not a float32 CPU target): timed twice")
    else:
        print(packing.describe().replace("--verify_kernel torch keeps torch's", "both timed"))
    runs = {  # label: (model, generate kwargs, verify on MKL's packed GEMM)
        "target alone": (target.model, {}, False),
        f"+ distilled draft ({args.draft_tokens}/round)": (target.model, dk, False),
        f"  same, packed verification ({rows})": (target.model, dk, True),
        f"prompt lookup ({args.lookup})": (
            target.model,
            {"prompt_lookup_num_tokens": args.lookup},
            False,
        ),
        DRAFT_ALONE: (draft.model, {}, False),
    }
    passes = {label: [] for label in runs}
    for _ in range(args.passes):  # in turns: every run sees the same swings of a shared CPU
        for label, (model, kwargs, packed) in runs.items():
            if packed:  # packed anew each pass (outside the timing), so no other run sees it
                pack_for_verification(model, rows, min_gain=0)
            passes[label].append(run(model, tok, prompts, args.new_tokens, **kwargs))
            unpack(model)
    report(passes, args)


def report(passes: dict, args) -> None:
    """Medians over the passes; a speedup is a pass's tokens/s over the same pass's target."""
    labels = list(passes)
    speed = {k: [Throughput(records).tokens_per_s for records, _ in v] for k, v in passes.items()}
    reference = [r.completion for r in passes[labels[0]][0][0]]
    print(
        f"\n{'run':34} {'tokens/s':>9} {'speedup':>8} {'range':>12} {'tok/round':>9} "
        f"{'accept@1..3':>16} identical"
    )
    for label in labels:
        ratios = [s / b for s, b in zip(speed[label], speed[labels[0]])]
        records = [r for records, _ in passes[label] for r in records]
        a = acceptance(records)
        pos = " ".join(f"{x:.2f}" for x in a.by_position[:3]) or "-"
        same = all([r.completion for r in rs] == reference for rs, _ in passes[label])
        same = "(other model)" if label == DRAFT_ALONE else ("yes" if same else "no")
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}x"
        print(
            f"{label:34} {statistics.median(speed[label]):9.1f} "
            f"{statistics.median(ratios):7.2f}x {spread:>12} {a.tokens_per_round:9.2f} "
            f"{pos:>16} {same}"
        )
    ratio = statistics.median(b / d for b, d in zip(speed[labels[0]], speed[DRAFT_ALONE]))
    print(
        f"\ndraft cost per token / target cost per token: {ratio:.2f} "
        "(speculation pays only when tokens/round exceeds 1 + draft_tokens x this ratio)"
    )
    # where a round's time goes, in the median pass of each draft run and of the target alone
    alone, alone_inside = median_pass(passes[labels[0]])
    alone_rounds = acceptance(alone).target_forwards
    rest = Throughput(alone).seconds - alone_inside["target"]
    print(
        f"target alone per token (ms): forward {1e3 * alone_inside['target'] / alone_rounds:.1f}"
        f", the rest {1e3 * rest / alone_rounds:.1f}"
    )
    for label in labels[1:3]:
        records, inside = median_pass(passes[label])
        rounds = acceptance(records).target_forwards
        other = Throughput(records).seconds - inside["target"] - inside["draft"]
        print(
            f"per round of {label.strip()} (ms): target forward "
            f"{1e3 * inside['target'] / rounds:.1f}, draft forwards "
            f"{1e3 * inside['draft'] / rounds:.1f}, transformers' own work "
            f"{1e3 * other / rounds:.1f}"
        )


def median_pass(runs: list) -> tuple:
    """The (records, seconds inside forwards) of the pass with the median wall time."""
    return sorted(runs, key=lambda p: Throughput(p[0]).seconds)[len(runs) // 2]


if __name__ == "__main__":
    main()
