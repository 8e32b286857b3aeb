"""The configuration of `llmkit evaluate`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from llmkit.config.schema import option
from llmkit.errors import ConfigError

#: computed on plain text by the sliding-window scorer, not by the metric registry
PERPLEXITY = "perplexity"


@dataclass
class PerplexityConfig:
    method: str = option(
        "strided",
        "strided: documents joined by EOS, overlapping windows (most context per token); "
        "rolling: lm-eval's loglikelihood_rolling per document, with its word/byte perplexities",
        choices=("strided", "rolling"),
    )
    context_length: int | None = option(
        None, "tokens per window; None: the model's maximum positions"
    )
    stride: int | None = option(
        None, "tokens between window starts (= context_length: disjoint); None: half the context"
    )


@dataclass
class HarnessConfig:
    tasks: list[str] = option(
        [],
        "lm-evaluation-harness tasks or groups (hellaswag,arc_easy), or task YAML files/folders; "
        "needs pip install 'llmkit[harness]'",
    )
    num_fewshot: int | None = option(None, "few-shot examples per prompt; None: the task's own")
    limit: float | None = option(
        None, "examples per task (a number >= 1), or a fraction of each task (< 1); None: all"
    )
    batch_size: int | None = option(None, "requests per forward pass; None: --batch_size")
    max_length: int | None = option(
        None, "lm-eval's max_length (tokens per window); None: the model's maximum positions"
    )


@dataclass
class EvalTaskConfig:
    name: str | None = option(
        None, "task of the data (`llmkit tasks`: qa, summarization, ...); None: perplexity on text"
    )
    options: dict[str, Any] = option(
        {}, "the task's own options, e.g. {allow_no_answer: true} for SQuAD 2.0 data"
    )


@dataclass
class EvaluateConfig:
    model: str | None = option(None, "model folder (save_pretrained) or Hub name to evaluate")
    task: EvalTaskConfig = field(default_factory=EvalTaskConfig)
    data: list[str] = option(
        [], "local files, folders or globs (a folder's <split>.* files are used), or a Hub dataset"
    )
    dataset_config: str | None = option(None, "configuration name of a Hub dataset")
    split: str = option("test", "split to evaluate: a Hub split, or <split>.* files in a folder")
    text_column: str = option("text", "column holding the text of tabular files (perplexity)")
    metrics: list[str] = option(
        [], "metrics to report; empty: the task's defaults, or perplexity without a task"
    )
    metric_options: dict[str, Any] = option(
        {}, "options per metric, e.g. {bleu: {tokenize: intl}, rouge: {use_stemmer: true}}"
    )
    max_examples: int | None = option(None, "evaluate only the first N examples (or documents)")
    batch_size: int = option(8, "prompts or perplexity windows per forward pass")
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)
    harness: HarnessConfig = field(default_factory=HarnessConfig)
    generation: dict[str, Any] = option(
        {}, "overrides of the task's generation settings, e.g. {max_new_tokens: 32}"
    )
    max_prompt_tokens: int | None = option(
        None, "keep the last N tokens of longer prompts; None: what fits the model's positions"
    )
    dtype: str = option(
        "float32", "weights' precision while evaluating", choices=("float32", "bfloat16", "float16")
    )
    device: str = option("auto", "cpu, cuda, cuda:1, ...; auto: cuda when available")
    trust_remote_code: bool = option(False, "allow model code from the Hub (off: safe loading)")
    output_dir: str | None = option(
        None, "where results go; None: runs/evaluate/<model>-<task or perplexity>-<split>"
    )
    overwrite: bool = option(False, "replace earlier results in output_dir")
    write_predictions: bool = option(True, "write predictions.jsonl with per-example scores")
    show_progress: bool = option(True, "show progress bars")

    #: short options of the command line: ``--task qa`` for ``--task.name qa``
    cli_aliases: ClassVar[dict[str, str]] = {"task": "task.name", "harness": "harness.tasks"}

    def validate(self) -> None:
        """Checks that need no model or data, so mistakes cost nothing; the evaluate pipeline
        checks the names that need the registries (task, metrics) next."""
        if not self.model:
            raise ConfigError("no model: set --model to a saved model folder or a Hub name")
        if not self.data and not self.harness.tasks:
            raise ConfigError(
                "no data: set --data to files, folders or globs, or to a Hub dataset name "
                "(or --harness to lm-eval tasks)"
            )
        self._check_numbers()
        model, out = Path(self.model), self.resolved_output_dir()
        if model.exists() and out.resolve() in (model.resolve(), *model.resolve().parents):
            raise ConfigError(
                f"output_dir {out} would replace the model folder {model}; choose another "
                "--output_dir (a folder inside the model's is fine)"
            )

    def _check_numbers(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        for name in ("max_examples", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (or none), got {value}")
        p = self.perplexity
        for name in ("context_length", "stride"):
            value = getattr(p, name)
            if value is not None and value < 1:
                raise ConfigError(f"perplexity.{name} must be >= 1, got {value}")
        if p.method == "rolling" and p.stride is not None:
            raise ConfigError(
                "perplexity.stride does not apply to perplexity.method rolling (disjoint "
                "windows of context_length, as lm-eval scores); drop one of them"
            )
        h = self.harness
        if h.num_fewshot is not None and h.num_fewshot < 0:
            raise ConfigError(f"harness.num_fewshot must be >= 0, got {h.num_fewshot}")
        if h.limit is not None and (h.limit <= 0 or (h.limit > 1 and h.limit != int(h.limit))):
            raise ConfigError(
                f"harness.limit must be a whole number of examples or a fraction below 1, "
                f"got {h.limit}"
            )
        for name in ("batch_size", "max_length"):
            value = getattr(h, name)
            if value is not None and value < 1:
                raise ConfigError(f"harness.{name} must be >= 1, got {value}")
        if p.context_length and p.stride and p.stride > p.context_length:
            raise ConfigError(
                f"perplexity.stride {p.stride} is above perplexity.context_length "
                f"{p.context_length}: tokens between windows would never be scored"
            )
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(f"device must be auto, cpu, mps, cuda or cuda:N, got {self.device!r}")

    def resolved_output_dir(self) -> Path:
        """``output_dir``, or a folder named after the model, the task and the split."""
        if self.output_dir:
            return Path(self.output_dir)
        model = Path(str(self.model).rstrip("/")).name if self.model else "model"
        if self.model and not Path(self.model).exists():
            model = str(self.model).replace("/", "--")  # Hub name: org/name -> org--name
        task = Path(self.task.name).stem if self.task.name else PERPLEXITY
        if not self.data and self.harness.tasks:
            task = "harness"
        return Path("runs/evaluate") / f"{model}-{task}-{self.split}"
