"""Score a model on a task: prompt, generate, post-process, compare with the references.

The fine-tuning pipeline calls :func:`evaluate_task` during training and ``llmkit evaluate
--task`` calls it on a test split, so a number means the same thing in both places. Metric
inputs are checked before any generation, so a wrong metric, option or reference set fails
in a second instead of after minutes of decoding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from accelerate import Accelerator
from accelerate.utils import gather_object
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from llmkit.errors import LlmkitError
from llmkit.evaluation.metrics import METRICS, compute_metrics
from llmkit.evaluation.report import headline_values
from llmkit.generation.batched import generate_texts
from llmkit.models.load import max_positions

if TYPE_CHECKING:
    from llmkit.tasks.base import Task

#: corpus BLEU of one sentence is mostly 0 (no 4-gram match); its per-example view is
#: sacrebleu's sentence BLEU. Macro-F1 has no per-example value (accuracy is its view).
PER_EXAMPLE = {"bleu": "sentence_bleu", "macro_f1": None}


@dataclass
class TaskEvalResult:
    metrics: dict[str, float | str]
    predictions: list[dict]
    num_examples: int
    by_metric: dict[str, dict[str, float | str]] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    num_prompt_tokens: int = 0
    num_prediction_tokens: int = 0
    truncated_prompts: int = 0
    seconds: float = 0.0


def evaluate_task(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    records: list[dict],
    *,
    metrics: list[str] | None = None,
    batch_size: int = 16,
    max_examples: int | None = None,
    generation: dict | None = None,
    max_prompt_tokens: int | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None,
    show_progress: bool = False,
    accelerator: Accelerator | None = None,
) -> TaskEvalResult:
    """Greedy (unless ``generation`` says otherwise) predictions for ``records``, scored.

    ``records`` are normalized task records (``load_task_records``); ``metrics`` default to
    the task's; ``generation`` overrides the task's settings; ``max_prompt_tokens`` defaults
    to what fits the model's positions next to ``max_new_tokens``. With an ``accelerator``
    of several processes each generates its share and every process gets the whole result.
    """
    names = list(dict.fromkeys(metrics or task.default_metrics))
    options = dict(metric_options or {})
    if max_examples is not None and max_examples < 1:
        raise LlmkitError(f"max_examples={max_examples}: must be at least 1 (or None for all)")
    records = list(records[:max_examples] if max_examples else records)
    if not records:
        raise LlmkitError(f"task {task.name}: no examples to evaluate; check the data and split")
    task.setup(tokenizer)  # e.g. the instruction task's chat template
    prompts = [task.prompt(r) for r in records]
    references = [list(task.references(r)) for r in records]
    check_metric_inputs(names, references, options, task.name)
    settings = generation_settings(task, generation)
    limit = prompt_token_limit(model, settings["max_new_tokens"], max_prompt_tokens)

    start = time.perf_counter()
    prompt_lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    raw = generate_shared(
        accelerator,
        model,
        tokenizer,
        prompts,
        batch_size=batch_size,
        max_prompt_tokens=limit,
        show_progress=show_progress,
        **settings,
    )
    predictions = [task.postprocess(p) for p in raw]
    by_metric = {
        name: compute_metrics([name], predictions, references, _options_for(name, options))
        for name in names
    }
    rows = [
        _prediction_row(record, prompt, refs, pred, names, options)
        for record, prompt, refs, pred in zip(records, prompts, references, predictions)
    ]
    return TaskEvalResult(
        metrics={k: v for values in by_metric.values() for k, v in values.items()},
        predictions=rows,
        num_examples=len(records),
        by_metric=by_metric,
        generation=settings | {"max_prompt_tokens": limit},
        num_prompt_tokens=sum(min(n, limit) if limit else n for n in prompt_lengths),
        num_prediction_tokens=sum(
            len(ids) for ids in tokenizer(predictions, add_special_tokens=False)["input_ids"]
        ),
        truncated_prompts=sum(n > limit for n in prompt_lengths) if limit else 0,
        seconds=time.perf_counter() - start,
    )


def headline_scores(result: TaskEvalResult, metrics: list[str]) -> dict[str, float]:
    """The numbers a result is quoted by (ROUGE's F-measures, not its precisions)."""
    out: dict[str, float] = {}
    for name in metrics:
        out.update(headline_values(name, result.by_metric.get(name, result.metrics)))
    return {k: float(v) for k, v in out.items() if isinstance(v, int | float)}


def generate_shared(
    accelerator: Accelerator | None, model, tokenizer, prompts: list[str], **kwargs: Any
) -> list[str]:
    """``generate_texts`` split across processes and gathered in prompt order, so
    data-parallel workers do not all decode the same prompts.

    Every process gets an equal share (short ones padded with a repeat of the last prompt)
    and so makes the same number of ``generate`` calls: a sharded (FSDP) model needs every
    process in every forward pass. Within one call transformers keeps the processes in step
    itself (``synced_gpus`` is on for FSDP-managed models)."""
    if accelerator is None or accelerator.num_processes == 1 or not prompts:
        return generate_texts(model, tokenizer, prompts, **kwargs)
    with accelerator.split_between_processes(prompts, apply_padding=True) as share:
        part = generate_texts(model, tokenizer, list(share), **kwargs)
    return unpad_shares(gather_object(part), len(prompts), accelerator.num_processes)


def unpad_shares(gathered: list, total: int, processes: int) -> list:
    """The ``total`` real items of equal padded shares, in order: like accelerate's split,
    the first ``total % processes`` shares hold one real item more, then padding."""
    width = -(-total // processes)
    base, extra = divmod(total, processes)
    return [
        item
        for rank in range(processes)
        for item in gathered[rank * width : rank * width + base + (rank < extra)]
    ]


def check_metric_inputs(
    names: list[str], references: list[list[str]], options: dict[str, Any], where: str
) -> None:
    """Every metric known, its options valid and the references usable, before generating."""
    known = METRICS.names()
    for name in names:
        if name not in METRICS:
            raise LlmkitError(f"unknown metric {name!r}; known: {', '.join(known)}")
    for name, opts in options.items():
        if name not in names:
            raise LlmkitError(
                f"options given for metric {name!r}, which is not requested ({', '.join(names)})"
            )
        if not isinstance(opts, dict):
            raise LlmkitError(f"options of metric {name!r} must be a mapping of names to values")
    placeholders = [""] * len(references)
    for name in names:
        metric = METRICS.get(name)
        try:
            metric.prepare(placeholders, references)
        except LlmkitError as e:
            raise LlmkitError(f"task {where}: {e}") from None
        metric.check_options(options.get(name, {}))


def generation_settings(task: Task, overrides: dict | None) -> dict[str, Any]:
    """The task's generation settings with the user's overrides; unknown names rejected."""
    settings = dict(task.generation) | dict(overrides or {})
    settings.setdefault("stop_strings", [])
    ours = {"max_new_tokens", "stop_strings"}
    defaults = GenerationConfig()
    for key in settings:
        if key not in ours and not hasattr(defaults, key):
            raise LlmkitError(
                f"generation.{key}: not a generation setting; use max_new_tokens, stop_strings "
                "or a transformers GenerationConfig field (num_beams, repetition_penalty, ...)"
            )
    if not isinstance(settings.get("max_new_tokens"), int) or settings["max_new_tokens"] < 1:
        raise LlmkitError(
            f"generation.max_new_tokens must be a positive integer, got "
            f"{settings.get('max_new_tokens')!r}"
        )
    stops = settings["stop_strings"]
    settings["stop_strings"] = [stops] if isinstance(stops, str) else list(stops or [])
    return settings


def prompt_token_limit(
    model: PreTrainedModel, max_new_tokens: int, requested: int | None
) -> int | None:
    """Room for the prompt once ``max_new_tokens`` are reserved within the model's positions."""
    positions = max_positions(model.config)
    if positions is None:
        return requested
    room = positions - max_new_tokens
    if room < 1:
        raise LlmkitError(
            f"generation.max_new_tokens={max_new_tokens} leaves no room for a prompt in the "
            f"model's {positions} positions; lower generation.max_new_tokens"
        )
    if requested is not None and requested > room:
        raise LlmkitError(
            f"max_prompt_tokens={requested} plus max_new_tokens={max_new_tokens} exceeds the "
            f"model's {positions} positions; use max_prompt_tokens <= {room}"
        )
    return requested or room


def example_scores(
    names: list[str], prediction: str, references: list[str], options: dict[str, Any]
) -> dict[str, float]:
    """Each metric's headline number(s) on one example, for predictions.jsonl."""
    scores: dict[str, float] = {}
    for name in names:
        scorer = PER_EXAMPLE.get(name, name)
        if scorer is None:
            continue
        given = {scorer: options[name]} if name in options else None
        values = compute_metrics([scorer], [prediction], [references], given)
        scores.update(headline_values(scorer, values))
    return scores


def _options_for(name: str, options: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    return {name: options[name]} if name in options else None


def _prediction_row(
    record: dict,
    prompt: str,
    references: list[str],
    prediction: str,
    names: list[str],
    options: dict[str, Any],
) -> dict[str, Any]:
    row: dict[str, Any] = {"id": record["id"]} if "id" in record else {}
    return row | {
        "prompt": prompt,
        "references": references,
        "prediction": prediction,
        "scores": example_scores(names, prediction, references, options),
    }
