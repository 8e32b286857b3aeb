"""What an evaluation leaves behind: eval_results.json, predictions.jsonl and a printed table.

eval_results.json is meant to be quoted: every headline number comes with its split, how many
examples and tokens it covers, the metric's configuration (the sacrebleu signature, ROUGE
options, perplexity window), the llmkit version, a fingerprint of the weights, and a
``model_index`` block in the format of a model card's ``model-index`` metadata.
"""

from __future__ import annotations

import inspect
import json
import math
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from llmkit import config as config_lib
from llmkit.evaluation.metrics import METRICS
from llmkit.version import __version__

if TYPE_CHECKING:
    from llmkit.config.evaluate import EvaluateConfig
    from llmkit.evaluation.harness import HarnessResult
    from llmkit.evaluation.load import LoadedModel
    from llmkit.evaluation.task_eval import TaskEvalResult
    from llmkit.evaluation.text_eval import TextEvalResult

RESULTS_FILE = "eval_results.json"
PREDICTIONS_FILE = "predictions.jsonl"

#: Hub task types of model-index entries
HUB_TASK_TYPES = {
    "qa": "question-answering",
    "summarization": "summarization",
    "translation": "translation",
    "classification": "text-classification",
}
DISPLAY_NAMES = {
    "perplexity": "Perplexity",
    "bleu": "BLEU",
    "sentence_bleu": "sentence BLEU",
    "chrf": "chrF",
    "ter": "TER",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "rougeLsum": "ROUGE-Lsum",
    "exact_match": "Exact Match",
    "f1": "F1",
    "accuracy": "Accuracy",
    "macro_f1": "Macro F1",
    "word_perplexity": "Word Perplexity",
    "byte_perplexity": "Byte Perplexity",
    "bits_per_byte": "Bits per Byte",
}
LM_EVAL_URL = "https://github.com/EleutherAI/lm-evaluation-harness"
#: the numbers a rolling (lm-eval style) perplexity run is quoted by
ROLLING_HEADLINES = ("perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte")


def headline_values(metric: str, values: dict[str, Any]) -> dict[str, float]:
    """The number(s) a metric is quoted by: its own key, or each ROUGE type's F-measure."""
    if metric in values:
        return {metric: values[metric]}
    return {
        k: v
        for k, v in values.items()
        if metric == "rouge" and k.startswith("rouge") and "_" not in k
    }


def metric_config(metric: str, values: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The settings that make a number reproducible: signature, or options with defaults."""
    config: dict[str, Any] = {}
    signature = values.get(f"{metric}_signature")
    if signature:
        config["signature"] = signature
    if metric in METRICS:
        params = list(inspect.signature(METRICS.get(metric)._compute).parameters.values())[2:]
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        effective = defaults | options
        if effective:
            config["options"] = {k: jsonable(v) for k, v in effective.items()}
    return config


def build_report(
    *,
    model: dict[str, Any],
    task: str | None,
    data: list[str],
    split: str,
    dataset_config: str | None,
    scores: dict[str, dict[str, Any]],
    configs: dict[str, dict[str, Any]],
    num_examples: int,
    num_tokens: int,
    details: dict[str, Any],
) -> dict[str, Any]:
    """The eval_results.json document.

    ``scores`` maps each requested metric to everything it returned, ``configs`` to its
    configuration; ``model`` holds ``name_or_path``, ``fingerprint`` and ``parameters``.
    """
    results = [
        {
            "metric": key,
            "value": value,
            "split": split,
            "num_examples": num_examples,
            "num_tokens": num_tokens,
            "config": configs.get(metric, {}),
        }
        for metric, values in scores.items()
        for key, value in headline_values(metric, values).items()
    ]
    flat = {k: v for values in scores.values() for k, v in values.items()}
    report = {
        "llmkit_version": llmkit_version(),
        "model": model,
        "task": task,
        "dataset": {"sources": list(data), "split": split, "config": dataset_config},
        "num_examples": num_examples,
        "num_tokens": num_tokens,
        "results": results,
        "metrics": flat,
        "details": details,
    }
    report["model_index"] = model_index(report)
    return report


def report_for_text(
    cfg: EvaluateConfig, loaded: LoadedModel, result: TextEvalResult
) -> dict[str, Any]:
    """The report of a perplexity run on plain text."""
    window = {"context_length": result.context_length, "stride": result.stride}
    options = {"options": window | {"text_column": cfg.text_column}}
    scores = {"perplexity": result.metrics}
    if result.method == "rolling":  # each of lm-eval's numbers is a headline of its own
        options = {"options": {"method": "rolling", "context_length": result.context_length}}
        options["options"]["text_column"] = cfg.text_column
        rest = {k: v for k, v in result.metrics.items() if k not in ROLLING_HEADLINES}
        scores = {m: {m: result.metrics[m]} for m in ROLLING_HEADLINES}
        scores["perplexity"] |= rest
    return build_report(
        model=_model_info(loaded),
        task=None,
        data=cfg.data,
        split=cfg.split,
        dataset_config=cfg.dataset_config,
        scores=scores,
        configs=dict.fromkeys(scores, options),
        num_examples=result.num_examples,
        num_tokens=result.num_tokens,
        details={
            "tokens_scored": result.num_tokens,
            "windows": result.windows,
            "seconds": result.seconds,
            "tokens_per_second": result.num_tokens / max(result.seconds, 1e-9),
            "dtype": cfg.dtype,
        },
    )


def report_for_task(
    cfg: EvaluateConfig, loaded: LoadedModel, result: TaskEvalResult
) -> dict[str, Any]:
    """The report of a task run; ``num_tokens`` counts the prompt tokens the model read."""
    return build_report(
        model=_model_info(loaded),
        task=cfg.task.name,
        data=cfg.data,
        split=cfg.split,
        dataset_config=cfg.dataset_config,
        scores=result.by_metric,
        configs={
            name: metric_config(name, values, cfg.metric_options.get(name, {}))
            for name, values in result.by_metric.items()
        },
        num_examples=result.num_examples,
        num_tokens=result.num_prompt_tokens,
        details={
            "prompt_tokens": result.num_prompt_tokens,
            "prediction_tokens": result.num_prediction_tokens,
            "truncated_prompts": result.truncated_prompts,
            "generation": jsonable(result.generation),
            "seconds": result.seconds,
            "examples_per_second": result.num_examples / max(result.seconds, 1e-9),
            "dtype": cfg.dtype,
        },
    )


def report_for_harness(cfg: EvaluateConfig, loaded: LoadedModel) -> dict[str, Any]:
    """The report of a run of lm-eval tasks alone (no --data); add_harness fills it."""
    return build_report(
        model=_model_info(loaded),
        task=None,
        data=[],
        split=cfg.split,
        dataset_config=None,
        scores={},
        configs={},
        num_examples=0,
        num_tokens=0,
        details={"dtype": cfg.dtype},
    )


def add_harness(report: dict[str, Any], result: HarnessResult, seconds: float) -> dict[str, Any]:
    """lm-eval's numbers as rows of ``results`` (with task, version, hash), in the model index.

    lm-eval's own output (per-task results, configs, versions, n-shot) is kept under
    ``harness`` so nothing it reported is lost.
    """
    for row in result.results:
        report["results"].append(
            {
                "task": row["task"],
                "metric": row["metric"],
                "value": row["value"],
                "stderr": row["stderr"],
                "split": row["dataset"]["split"],
                "num_examples": row["num_examples"],
                "num_tokens": None,
                "dataset": row["dataset"],
                "config": {
                    "source": f"lm-eval {result.lm_eval_version}",
                    "options": {
                        "num_fewshot": row["num_fewshot"],
                        "task_version": row["version"],
                        "task_hash": row["hash"],
                        "higher_is_better": row["higher_is_better"],
                    },
                },
            }
        )
        report["metrics"][f"{row['task']}/{row['metric']}"] = row["value"]
    report["harness"] = {
        "lm_eval_version": result.lm_eval_version,
        "seconds": seconds,
        **result.raw,
    }
    report["model_index"] = model_index(report)
    return report


def save_outputs(
    out: Path,
    cfg: EvaluateConfig,
    report: dict[str, Any],
    predictions: list[dict[str, Any]],
) -> Path:
    """Write the run folder once everything is computed, so a failure leaves nothing."""
    if cfg.overwrite and out.exists():
        shutil.rmtree(out)  # check_output_dir allowed it: an llmkit run folder
    out.mkdir(parents=True, exist_ok=True)
    config_lib.save(cfg, out)
    if cfg.write_predictions and predictions:
        write_predictions(out, predictions)
    return write_results(out, report)


def model_index(report: dict[str, Any]) -> list[dict[str, Any]]:
    """``model-index`` metadata (huggingface_hub's format) for the report's headline results."""
    return eval_results_to_model_index(_model_name(report), card_eval_results(report))


def card_eval_results(report: dict[str, Any]) -> list[EvalResult]:
    """One ``EvalResult`` per headline number, for ``ModelCardData(eval_results=...)``."""
    dataset = report["dataset"]
    sources = dataset["sources"]
    task = report["task"]
    out = []
    for r in report["results"]:
        config = r["config"]
        if "task" in r:  # an lm-eval task: its own dataset and task name
            data = r["dataset"]
            out.append(
                EvalResult(
                    task_type="text-generation",
                    task_name=r["task"],
                    dataset_type=data["path"] or r["task"],
                    dataset_name=r["task"],
                    dataset_config=data["name"],
                    dataset_split=data["split"],
                    metric_type=r["metric"],
                    metric_name=DISPLAY_NAMES.get(r["metric"], r["metric"]),
                    metric_value=r["value"],
                    metric_config=config["source"],
                    metric_args=config["options"],
                    source_name=f"lm-evaluation-harness ({config['source']})",
                    source_url=LM_EVAL_URL,
                )
            )
            continue
        out.append(
            EvalResult(
                task_type=HUB_TASK_TYPES.get(task or "", "text-generation"),
                task_name=task or "language modeling",
                dataset_type=_dataset_type(sources),
                dataset_name=", ".join(sources),
                dataset_config=dataset["config"],
                dataset_split=r["split"],
                metric_type=r["metric"],
                metric_name=DISPLAY_NAMES.get(r["metric"], r["metric"]),
                metric_value=r["value"],
                metric_config=config.get("signature"),
                metric_args=config.get("options") or None,
            )
        )
    return out


def eval_results_from_index(index: list[dict[str, Any]]) -> list[EvalResult]:
    """The inverse of :func:`model_index`, as a model card reads it back."""
    return model_index_to_eval_results(index)[1]


def write_results(out: Path, report: dict[str, Any]) -> Path:
    path = out / RESULTS_FILE
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=True) + "\n")
    return path


def write_predictions(out: Path, rows: list[dict[str, Any]]) -> Path:
    path = out / PREDICTIONS_FILE
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def read_predictions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def format_table(report: dict[str, Any]) -> str:
    """An aligned table of the headline numbers, with what they were computed on."""
    model, dataset = report["model"], report["dataset"]
    header = ("metric", "value", "examples", "tokens")
    rows = [
        (
            f"{r['task']}/{r['metric']}" if "task" in r else r["metric"],
            _number(r["value"]) + (f" ± {r['stderr']:.4f}" if r.get("stderr") else ""),
            _count(r["num_examples"]),
            _count(r["num_tokens"]),
        )
        for r in report["results"]
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    lines = [f"model: {model['name_or_path']} ({model['fingerprint'][:23]})"]
    if dataset["sources"]:
        lines.append(
            f"data:  {', '.join(dataset['sources'])} [{dataset['split']}]"
            + (f", task {report['task']}" if report["task"] else "")
        )
    if "harness" in report:
        lines.append(f"lm-eval {report['harness']['lm_eval_version']}: task/metric ± stderr")
    lines += [
        "",
        line(header),
        line(tuple("-" * w for w in widths)),
        *[line(row) for row in rows],
    ]
    signatures = {r["config"]["signature"] for r in report["results"] if "signature" in r["config"]}
    lines += [f"signature: {s}" for s in sorted(signatures)]
    return "\n".join(lines)


def llmkit_version() -> str:
    """The installed distribution's version (works for editable installs run from anywhere)."""
    try:
        return metadata.version("llmkit")
    except metadata.PackageNotFoundError:
        return __version__


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4f}"
    return str(value)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _model_info(loaded: LoadedModel) -> dict[str, Any]:
    return {
        "name_or_path": loaded.name_or_path,
        "fingerprint": loaded.fingerprint,
        "parameters": loaded.parameters,
    }


def _model_name(report: dict[str, Any]) -> str:
    name = str(report["model"]["name_or_path"]).rstrip("/")
    return Path(name).name if Path(name).exists() else name


def _dataset_type(sources: list[str]) -> str:
    """A Hub dataset id as is; for local files the file or folder name."""
    if len(sources) == 1 and not Path(sources[0]).exists():
        return sources[0]
    return Path(sources[0]).name if sources else "unknown"


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it (tuples as lists, keys as strings, anything else repr)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)
