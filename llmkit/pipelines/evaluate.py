"""Evaluation: the steps a user would describe, in order.

Read the split, load the model, score it (perplexity on plain text, or a task's metrics on
generated predictions; lm-evaluation-harness tasks with --harness), then write
eval_results.json (and predictions.jsonl) and print a table. Nothing is written until every
number is computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmkit.config.evaluate import PERPLEXITY, EvaluateConfig
from llmkit.errors import ConfigError
from llmkit.evaluation.harness import HarnessTasks, resolve_tasks, run_harness
from llmkit.evaluation.load import LoadedModel, load_for_evaluation
from llmkit.evaluation.metrics import METRICS
from llmkit.evaluation.report import (
    add_harness,
    format_table,
    report_for_harness,
    report_for_task,
    report_for_text,
    save_outputs,
)
from llmkit.evaluation.task_eval import evaluate_task
from llmkit.evaluation.text_eval import evaluate_text, load_texts
from llmkit.outputs import check_output_dir
from llmkit.tasks import get_task
from llmkit.tasks.data import load_task_records


@dataclass
class EvaluateResult:
    output_dir: Path
    report: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        """Every value the metrics returned, by name (``perplexity``, ``bleu``, ``rouge1``...)."""
        return self.report["metrics"]


def run(cfg: EvaluateConfig) -> EvaluateResult | None:
    cfg.validate()
    check_metrics(cfg)
    check_task(cfg)
    out = check_output_dir(cfg.resolved_output_dir(), cfg.overwrite, resuming=False)
    harness = resolve_tasks(cfg.harness.tasks) if cfg.harness.tasks else None
    predictions: list[dict] = []
    if cfg.task.name:
        report, predictions, loaded = evaluate_on_task(cfg)
    elif cfg.data:
        report, loaded = evaluate_on_text(cfg)
    else:
        loaded = load_model(cfg)
        report = report_for_harness(cfg, loaded)
    if harness is not None:
        report = evaluate_on_harness(cfg, loaded, harness, report)
        if report is None:  # a non-main process of `accelerate launch`: rank 0 writes
            return None
    path = save_outputs(out, cfg, report, predictions)
    print(f"{format_table(report)}\n\nresults: {path}")
    return EvaluateResult(out, report)


def check_metrics(cfg: EvaluateConfig) -> None:
    """Every metric known, and its options for a requested metric."""
    known = [PERPLEXITY, *METRICS.names()]
    for name in cfg.metrics:
        if name not in known:
            raise ConfigError(f"unknown metric {name!r} in --metrics; known: {', '.join(known)}")
    for name in cfg.metric_options:
        if name not in known:
            raise ConfigError(f"metric_options.{name}: unknown metric; known: {', '.join(known)}")
        if cfg.metrics and name not in cfg.metrics:
            raise ConfigError(
                f"metric_options.{name}: {name!r} is not in --metrics; "
                "add it there or drop its options"
            )


def check_task(cfg: EvaluateConfig) -> None:
    """Plain text gets perplexity only; a task gets its metrics, never perplexity."""
    if cfg.task.name is not None:
        if PERPLEXITY in cfg.metrics:
            raise ConfigError(
                "perplexity is computed on plain text: drop --task, or drop perplexity "
                "from --metrics"
            )
        get_task(cfg.task.name, cfg.task.options)  # unknown names and options fail here
        return
    needing = [m for m in cfg.metrics if m != PERPLEXITY]
    if needing:
        raise ConfigError(
            f"metric {needing[0]} needs references, and plain text has none: set --task "
            "(whose data carries the references) or use --metrics perplexity"
        )
    if cfg.metric_options:
        raise ConfigError(
            f"metric_options.{next(iter(cfg.metric_options))}: plain text is scored by "
            "perplexity only; set --task to compute other metrics, or drop the options"
        )
    if cfg.task.options:
        raise ConfigError("task.options given without a task: set --task or drop them")


def evaluate_on_harness(
    cfg: EvaluateConfig, loaded: LoadedModel, harness: HarnessTasks, report: dict[str, Any]
) -> dict[str, Any] | None:
    """lm-evaluation-harness's tasks on the loaded model; its numbers join the report."""
    start = time.perf_counter()
    result = run_harness(
        loaded.model,
        loaded.tokenizer,
        harness,
        num_fewshot=cfg.harness.num_fewshot,
        limit=cfg.harness.limit,
        batch_size=cfg.harness.batch_size or cfg.batch_size,
        max_length=cfg.harness.max_length,
    )
    if result is None:
        return None
    return add_harness(report, result, time.perf_counter() - start)


def evaluate_on_text(cfg: EvaluateConfig) -> tuple[dict[str, Any], LoadedModel]:
    """Perplexity: read the split's documents, load the model, score the stream."""
    texts = load_texts(
        cfg.data,
        cfg.split,
        cfg.text_column,
        dataset_config=cfg.dataset_config,
        max_examples=cfg.max_examples,
    )
    loaded = load_model(cfg)
    result = evaluate_text(
        loaded.model,
        loaded.tokenizer,
        texts,
        context_length=cfg.perplexity.context_length,
        stride=cfg.perplexity.stride,
        batch_size=cfg.batch_size,
        show_progress=cfg.show_progress,
        method=cfg.perplexity.method,
    )
    return report_for_text(cfg, loaded, result), loaded


def evaluate_on_task(cfg: EvaluateConfig) -> tuple[dict[str, Any], list[dict], LoadedModel]:
    """Task metrics: read the split's records, load the model, generate and score."""
    task = get_task(cfg.task.name, cfg.task.options)
    records = load_task_records(task, cfg.data, cfg.split, dataset_config=cfg.dataset_config)
    loaded = load_model(cfg)
    result = evaluate_task(
        loaded.model,
        loaded.tokenizer,
        task,
        records,
        metrics=cfg.metrics or None,
        batch_size=cfg.batch_size,
        max_examples=cfg.max_examples,
        generation=cfg.generation,
        max_prompt_tokens=cfg.max_prompt_tokens,
        metric_options=cfg.metric_options,
        show_progress=cfg.show_progress,
    )
    return report_for_task(cfg, loaded, result), result.predictions, loaded


def load_model(cfg: EvaluateConfig) -> LoadedModel:
    return load_for_evaluation(
        cfg.model,
        dtype=cfg.dtype,
        device=cfg.device,
        trust_remote_code=cfg.trust_remote_code,
        show_progress=cfg.show_progress,
    )
