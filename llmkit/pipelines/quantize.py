"""`llmkit quantize RUN_DIR --method int8-dynamic|int8-weight --out DIR`: an int8 model folder.

Load the model (a LoRA run merged first), quantize its linear layers with torchao, save it
to a temporary folder, load that back with plain ``from_pretrained`` and compare it with the
original (logits, greedy outputs on fixed prompts and their decode tokens/s, with int8-dynamic
decoding on fbgemm as ``llmkit generate`` runs it, and perplexity when --data is given);
then rename the folder into place with quantize_report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from transformers import AutoModelForCausalLM

from llmkit.cards import CardInfo, write_card
from llmkit.errors import LlmkitError
from llmkit.evaluation.text_eval import evaluate_text, load_texts
from llmkit.export.compare import PROMPTS, compare_logits, greedy_texts
from llmkit.export.int8_kernels import use_fast_int8
from llmkit.export.quantize import (
    METHODS,
    check_method,
    folder_size,
    head_precision,
    load_quantized,
)
from llmkit.export.source import check_source, load_source, saved_folder
from llmkit.models.load import count_parameters, describe
from llmkit.permissions import ordinary_modes

REPORT = "quantize_report.json"


def run(
    run_dir: str,
    out: str,
    method: str = "int8-dynamic",
    overwrite: bool = False,
    data: list[str] | None = None,
    split: str = "validation",
    text_column: str = "text",
    trust_remote_code: bool = False,
    keep_head_float: bool = False,
) -> dict:
    check_method(method)
    target = check_output_folder(out, overwrite)
    check_source(run_dir)
    texts = load_texts(data, split, text_column) if data else None
    source = load_source(run_dir, trust_remote_code)
    with saved_folder(source, run_dir) as folder:
        quantized = load_quantized(folder, method, trust_remote_code, not keep_head_float)
    head = head_precision(quantized, not keep_head_float)

    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        quantized.save_pretrained(tmp, safe_serialization=True)
        source.tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(str(tmp)).eval()  # plain loading
        fast = use_fast_int8(reloaded)  # as llmkit generate runs it on this CPU
        report = compare(source, reloaded, method, texts) | {"fast_int8_layers": fast, "head": head}
        report["size_bytes"] = folder_size(tmp)
        _card(tmp, target.name, source, method, report)
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        ordinary_modes(tmp)  # safetensors writes 0600
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(format_report(report) + f"\nsaved to: {target}")
    return report


def compare(source, quantized, method: str, texts: list[str] | None) -> dict:
    ids = [source.tokenizer(p)["input_ids"] for p in PROMPTS]
    logits = compare_logits(source.model, quantized, ids)  # also warms both models up
    (greedy, original_speed), (outputs, speed) = timed_greedy(
        [source.model, quantized], source.tokenizer
    )
    report = {
        "method": method,
        "torchao_config": METHODS[method],
        "source": source.description,
        "float32_bytes": 4 * count_parameters(source.model),
        **logits,
        "greedy_match": sum(a == b for a, b in zip(greedy, outputs)),
        "prompts": len(PROMPTS),
        "decode_tokens_per_s_original": original_speed,
        "decode_tokens_per_s": speed,
    }
    if texts:
        before = evaluate_text(source.model, source.tokenizer, texts).metrics["perplexity"]
        after = evaluate_text(quantized, source.tokenizer, texts).metrics["perplexity"]
        report.update(
            perplexity_original=before, perplexity=after, perplexity_change=after / before - 1
        )
    return report


def timed_greedy(models: list, tokenizer, repeats: int = 3) -> list[tuple[list[list[int]], float]]:
    """Each model's greedy outputs on the sample prompts (batch 1) and new tokens per second,
    the best of ``repeats`` passes taken in turns (a shared CPU swings by a fifth)."""
    outputs, best = [None] * len(models), [0.0] * len(models)
    for _ in range(repeats):
        for i, model in enumerate(models):
            start = time.perf_counter()
            outputs[i] = greedy_texts(model, tokenizer)
            best[i] = max(best[i], sum(map(len, outputs[i])) / (time.perf_counter() - start))
    return list(zip(outputs, best))


def check_output_folder(out: str, overwrite: bool) -> Path:
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise LlmkitError(f"quantize --out {out} is a file; choose a folder path")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise LlmkitError(f"quantize --out {out} is not empty; pass --overwrite to replace it")
        if not (target / REPORT).is_file():
            raise LlmkitError(
                f"quantize --out {out} holds no {REPORT}; refusing to delete it even with "
                "--overwrite; choose another --out"
            )
    return target


def format_report(r: dict) -> str:
    lines = [
        f"{r['method']} ({r['torchao_config']}) against {r['source']}:",
        f"  size on disk       {r['size_bytes'] / 2**20:.2f} MiB "
        f"(float32 {r['float32_bytes'] / 2**20:.2f} MiB)",
        f"  output head        {r['head']}",
        f"  logits max rel diff {r['max_rel_diff']:.3g}, top-1 agreement {r['top1_agreement']:.1%}",
        f"  greedy outputs     {r['greedy_match']}/{r['prompts']} prompts identical",
        f"  decode (batch 1)   {r['decode_tokens_per_s']:.1f} tokens/s, float32 "
        f"{r['decode_tokens_per_s_original']:.1f} "
        f"({r['decode_tokens_per_s'] / r['decode_tokens_per_s_original']:.2f}x); "
        + (
            f"{r['fast_int8_layers']} layers decode on fbgemm"
            if r["fast_int8_layers"]
            else "torchao kernels"
        ),
    ]
    if "perplexity" in r:
        lines.append(
            f"  perplexity         {r['perplexity']:.3f} (original {r['perplexity_original']:.3f}, "
            f"{r['perplexity_change']:+.2%})"
        )
    return "\n".join(lines)


def _card(folder: Path, title: str, source, method: str, report: dict) -> None:
    write_card(
        folder,
        CardInfo(
            title=title,
            summary=(
                f"{source.description} with its linear layers quantized to int8 by torchao "
                f"({METHODS[method]}; output head: {report['head']}); loads with "
                "AutoModelForCausalLM.from_pretrained when torchao is installed."
            ),
            base_model=None,
            method=f"torchao {METHODS[method]} (llmkit quantize --method {method})",
            parameters=count_parameters(source.model),
            architecture=describe(source.model.config),
            results={k: round(report[k], 4) for k in ("perplexity",) if k in report},
        ),
    )


def from_args(args: argparse.Namespace) -> dict:
    return run(
        args.run_dir,
        args.out,
        args.method,
        args.overwrite,
        args.data,
        args.split,
        args.text_column,
        args.trust_remote_code,
        args.keep_head_float,
    )
