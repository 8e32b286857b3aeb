"""Generation: the steps a user would describe, in order.

Load the model (and the draft), read the prompts, check they fit, generate (one prompt streams
to the terminal; several run in left-padded batches into a JSONL file), print tokens/s; a
speculative run also prints its acceptance and, with ``--compare``, the plain run's speed.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from llmkit.config.generate import GenerateConfig
from llmkit.errors import LlmkitError
from llmkit.evaluation.load import LoadedModel, is_local, load_for_evaluation
from llmkit.generation.batched import Generation, generate_records
from llmkit.generation.options import Throughput, sampling_kwargs
from llmkit.generation.packed_verify import Packing, pack_for_verification
from llmkit.generation.prompts import fit_prompts, read_prompts, render
from llmkit.generation.speculative import (
    Acceptance,
    acceptance,
    check_draft_settings,
    count_forwards,
    draft_kwargs,
)
from llmkit.generation.stream import stream_generation
from llmkit.models.load import max_positions


@dataclass
class GenerateResult:
    records: list[Generation]
    throughput: Throughput
    acceptance: Acceptance | None = None
    plain: Throughput | None = None  # --compare: the same prompts without drafting
    identical: bool | None = None  # --compare: the same completions
    output: Path | None = None
    fast_int8_layers: int = 0  # int8 layers decoding on fbgemm (an llmkit quantize folder)
    packing: Packing | None = None  # a draft run's verification kernel, where one was chosen

    @property
    def speedup(self) -> float | None:
        return self.throughput.tokens_per_s / self.plain.tokens_per_s if self.plain else None


def run(cfg: GenerateConfig) -> GenerateResult:
    cfg.validate()
    kwargs = sampling_kwargs(
        do_sample=cfg.do_sample,
        temperature=cfg.temperature,
        top_k=cfg.top_k,
        top_p=cfg.top_p,
        repetition_penalty=cfg.repetition_penalty,
        num_beams=cfg.num_beams,
        extra=cfg.generation,
    )
    prompts = read_prompts(cfg.prompt, cfg.prompts_file, cfg.prompt_field)
    if cfg.speculative:
        check_draft_settings(cfg.num_beams, cfg.batch_size, len(prompts))
    streaming = cfg.stream and len(prompts) == 1 and cfg.num_beams == 1
    output = output_path(cfg, len(prompts), streaming)
    if cfg.draft_model and is_local(cfg.draft_model) and not Path(cfg.draft_model).is_dir():
        raise LlmkitError(f"draft_model folder {cfg.draft_model} not found; check --draft-model")

    target = load(cfg, cfg.model)
    texts = render(prompts, target.tokenizer, cfg.chat)
    limit = prompt_limit(cfg, target)
    over = fit_prompts(texts, target.tokenizer, limit, truncate=not cfg.no_truncate)
    if over:
        print(
            f"warning: {len(over)} prompt(s) longer than {limit} tokens (first: {over[0]}) keep "
            "their last tokens; pass --no-truncate to refuse them instead",
            file=sys.stderr,
        )
    settings = dict(
        max_new_tokens=cfg.max_new_tokens,
        stop_strings=cfg.stop,
        max_prompt_tokens=limit,
        **kwargs,
    )
    plain_settings = dict(settings, batch_size=1 if cfg.speculative else cfg.batch_size)
    draft = None
    if cfg.draft_model:
        draft = load(cfg, cfg.draft_model, role="draft")
        settings |= draft_kwargs(
            target.model,
            target.tokenizer,
            draft.model,
            draft.tokenizer,
            num_tokens=cfg.draft_tokens,
            schedule=cfg.draft_schedule,
            confidence=cfg.draft_confidence,
            where=cfg.draft_model,
        )
    elif cfg.prompt_lookup:
        settings["prompt_lookup_num_tokens"] = cfg.prompt_lookup
    packing = None
    if cfg.draft_model and cfg.verify_kernel == "auto":
        packing = pack_for_verification(target.model, cfg.draft_tokens + 1)

    torch.manual_seed(cfg.seed)
    records = generate(cfg, target, texts, settings, draft, streaming)
    result = GenerateResult(
        records, Throughput(records), fast_int8_layers=target.fast_int8_layers, packing=packing
    )
    if cfg.speculative:
        result.acceptance = acceptance(records)
    if cfg.compare:
        torch.manual_seed(cfg.seed)
        plain = generate_records(
            target.model,
            target.tokenizer,
            texts,
            show_progress=cfg.show_progress and len(texts) > 1,
            **plain_settings,
        )
        result.plain = Throughput(plain)
        result.identical = [r.completion for r in records] == [p.completion for p in plain]
    if not streaming and len(records) == 1:
        print(records[0].completion)
    if output is not None:
        write_jsonl(output, prompts, records)
        result.output = output
    print(summary(cfg, result), file=sys.stderr)
    return result


def load(cfg: GenerateConfig, name: str, role: str = "model") -> LoadedModel:
    try:
        return load_for_evaluation(
            name,
            dtype=cfg.dtype,
            device=cfg.device,
            trust_remote_code=cfg.trust_remote_code,
            show_progress=cfg.show_progress,
            int8_kernel=cfg.int8_kernel,
        )
    except LlmkitError as e:
        if role == "model":
            raise
        raise LlmkitError(str(e).replace("--model", "--draft-model")) from None


def prompt_limit(cfg: GenerateConfig, target: LoadedModel) -> int | None:
    """Prompt tokens that fit in the model's positions together with the new tokens."""
    if cfg.max_prompt_tokens is not None:
        return cfg.max_prompt_tokens
    positions = max_positions(target.model.config)
    if positions is None:
        return None
    if positions <= cfg.max_new_tokens:
        raise LlmkitError(
            f"max_new_tokens={cfg.max_new_tokens} leaves no room for a prompt in the model's "
            f"{positions} positions; lower max_new_tokens"
        )
    return positions - cfg.max_new_tokens


def generate(cfg, target, texts, settings, draft, streaming) -> list[Generation]:
    """The run itself; a draft's forwards are counted (one per proposed token)."""
    model, tokenizer = target.model, target.tokenizer
    with count_forwards(draft.model) if draft else _no_counter() as counter:
        if streaming:
            return [
                stream_generation(model, tokenizer, texts[0], draft_counter=counter, **settings)
            ]
        return generate_records(
            model,
            tokenizer,
            texts,
            batch_size=cfg.batch_size,
            show_progress=cfg.show_progress,
            draft_counter=counter,
            **settings,
        )


class _no_counter:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def output_path(cfg: GenerateConfig, num_prompts: int, streaming: bool) -> Path | None:
    """The JSONL file, checked before any work: never overwritten without --overwrite."""
    if cfg.output:
        path = Path(cfg.output)
    elif streaming:
        return None
    else:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(cfg.model.rstrip("/")).name) or "model"
        path = Path("runs/generate") / f"{name}.jsonl"
    if path.is_dir():
        raise LlmkitError(f"output {path} is a folder; give a .jsonl file path")
    if path.exists() and not cfg.overwrite:
        raise LlmkitError(f"output {path} exists; pass --overwrite or choose another --output")
    return path


def write_jsonl(path: Path, prompts: list, records: list[Generation]) -> None:
    """Written to a temporary file beside ``path`` and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for prompt, r in zip(prompts, records):
            row = {
                "prompt": prompt,
                "completion": r.completion,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "seconds": round(r.seconds, 4),
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files
    os.replace(tmp, path)


def summary(cfg: GenerateConfig, result: GenerateResult) -> str:
    t = result.throughput
    lines = [
        f"{len(result.records)} prompt(s): {t.prompt_tokens:,} prompt tokens, "
        f"{t.new_tokens:,} new tokens in {t.seconds:.2f} s ({t.tokens_per_s:,.1f} tokens/s)"
    ]
    if t.prefill_tokens_per_s is not None:
        lines.append(
            f"prefill {t.prefill_tokens_per_s:,.0f} tokens/s, decode "
            f"{t.decode_tokens_per_s:,.1f} tokens/s"
        )
    a = result.acceptance
    if a is not None:
        method = (
            f"draft {cfg.draft_model}" if cfg.draft_model else f"prompt lookup {cfg.prompt_lookup}"
        )
        rate = f", {a.acceptance_rate:.0%} of proposed" if a.acceptance_rate is not None else ""
        positions = " ".join(f"{p:.2f}" for p in a.by_position[:8])
        lines += [
            f"speculative ({method}): {a.target_forwards:,} target forwards for "
            f"{a.new_tokens:,} tokens; {a.accepted_per_round:.2f} accepted per round{rate}",
            f"acceptance by draft position 1..{min(8, len(a.by_position))}: {positions or '-'}",
        ]
    if result.plain is not None:
        s = result.speedup
        verdict = (
            f"{s:.2f}x faster" if s >= 1 else f"SLOWER: {s:.2f}x, drafting costs more than it saves"
        )
        same = "identical" if result.identical else "different (expected only when sampling)"
        lines.append(
            f"plain decoding: {result.plain.tokens_per_s:,.1f} tokens/s; speculative is "
            f"{verdict}; completions {same}"
        )
    if result.fast_int8_layers:
        lines.append(
            f"int8: {result.fast_int8_layers} torchao int8-dynamic layers decode on fbgemm "
            "(one-token calls; --int8_kernel torchao to keep torchao's)"
        )
    if result.packing is not None:
        lines.append(result.packing.describe())
    if result.output:
        lines.append(f"wrote {result.output}")
    return "\n".join(lines)
