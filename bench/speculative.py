"""Speculative decoding on this CPU: target alone vs + distilled draft vs prompt lookup.

One invocation: pretrain a target (``small`` preset by default) on the embedded corpus for
``--target-steps``, distill a draft from it (``llmkit distill``, 1 layer), then generate greedily
(128 new tokens, batch 1) on QA prompts (data/tasks/qa: context + question, so prompt lookup
has text to copy) three ways, printing tokens/s, speedup, acceptance and whether every output
is identical to the target's own. Run folders are reused when present (delete runs/bench-spec
to retrain). Training measured on an idle 2-core CPU: target 14 min, draft 10.5 min; the
generation runs take about a minute.

    .venv/bin/python bench/speculative.py [--target-steps 300 --draft-steps 300 --prompts 8]
    .venv/bin/python bench/speculative.py --target runs/pretrain-reader   # draft for your model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from llmkit.cli import main as llmkit
from llmkit.evaluation.load import load_for_evaluation
from llmkit.generation.batched import generate_records
from llmkit.generation.options import Throughput
from llmkit.generation.speculative import acceptance, count_forwards, draft_kwargs

ROOT = Path(__file__).resolve().parents[1]
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
        draft = RUNS / f"draft-{shape}-{args.draft_steps}"
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


def run(label, model, tok, prompts, new, **kwargs):
    draft = kwargs.get("assistant_model")
    with count_forwards(draft) if draft is not None else _null() as counter:
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
    return label, records


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


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
    p.add_argument("--lookup", type=int, default=10)
    args = p.parse_args()
    target_dir, draft_dir = train(args)
    target = load_for_evaluation(str(target_dir), show_progress=False)
    draft = load_for_evaluation(str(draft_dir), show_progress=False)
    prompts, tok = qa_prompts(args.prompts), target.tokenizer
    print(
        f"target {target.parameters:,} params, draft {draft.parameters:,}; {len(prompts)} QA "
        f"prompts, greedy, {args.new_tokens} new tokens, batch 1, fp32; load average "
        f"{os.getloadavg()[0]:.1f} (timings assume an otherwise idle machine)"
    )
    dk = draft_kwargs(
        target.model,
        tok,
        draft.model,
        draft.tokenizer,
        num_tokens=args.draft_tokens,
        schedule="constant",
        confidence=0.0,
        where=str(draft_dir),
    )
    runs = [
        run("target alone", target.model, tok, prompts, args.new_tokens),
        run(
            f"+ distilled draft ({args.draft_tokens}/round)",
            target.model,
            tok,
            prompts,
            args.new_tokens,
            **dk,
        ),
        run(
            f"prompt lookup ({args.lookup})",
            target.model,
            tok,
            prompts,
            args.new_tokens,
            prompt_lookup_num_tokens=args.lookup,
        ),
        run("draft alone", draft.model, tok, prompts, args.new_tokens),
    ]
    base = Throughput(runs[0][1]).tokens_per_s
    reference = [r.completion for r in runs[0][1]]
    print(
        f"\n{'run':34} {'tokens/s':>9} {'speedup':>8} {'tok/round':>9} {'accept@1..3':>16}"
        " identical"
    )
    for label, records in runs:
        t, a = Throughput(records), acceptance(records)
        pos = " ".join(f"{x:.2f}" for x in a.by_position[:3]) or "-"
        same = "yes" if [r.completion for r in records] == reference else "no"
        if label == "draft alone":
            same = "(other model)"
        print(
            f"{label:34} {t.tokens_per_s:9.1f} {t.tokens_per_s / base:7.2f}x "
            f"{a.tokens_per_round:9.2f} {pos:>16} {same}"
        )
    d_cost = 1 / Throughput(runs[3][1]).tokens_per_s
    t_cost = 1 / base
    print(
        f"\ndraft cost per token / target cost per token: {d_cost / t_cost:.2f} "
        "(speculation pays only when tokens/round exceeds 1 + draft_tokens x this ratio)"
    )


if __name__ == "__main__":
    main()
