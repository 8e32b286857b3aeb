"""The configuration of `llmkit finetune`: a base model, a task and its data, the method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmkit.config.schema import option
from llmkit.config.sections import HubConfig, ModelConfig, TrainConfig
from llmkit.errors import ConfigError


@dataclass
class TaskConfig:
    name: str = option("qa", "a task from `llmkit tasks`, a task .py file or a .yaml template")
    options: dict[str, Any] = option({}, "the task's own options (`--task NAME --help` lists them)")
    max_length: int = option(
        512, "tokens per example (prompt, target, EOS); longer contexts are cut to fit"
    )


@dataclass
class TaskDataConfig:
    """Where a task's records come from: files or a Hub dataset, with its own splits or a
    seeded hold-out. (Task records are not cleaned, deduplicated or packed.)"""

    train_files: list[str] = option(
        [],
        "files, globs or a folder (.jsonl .json .csv .parquet, SQuAD JSON); a folder with "
        "train/validation/test files gives each split; or a Hub dataset name",
    )
    validation_files: list[str] = option([], "validation files; empty: the data's own split")
    dataset_name: str | None = option(None, "a Hub dataset name instead of train_files")
    dataset_config_name: str | None = option(None, "the Hub dataset's configuration name")
    validation_split: float = option(
        0.05, "fraction of training records held out when the data has no validation split"
    )
    seed: int = option(0, "seed of the held-out validation records")


@dataclass
class PeftConfig:
    method: str = option(
        "full",
        "full fine-tuning, LoRA adapters, or QLoRA (4-bit base; needs a GPU and bitsandbytes)",
        choices=("full", "lora", "qlora"),
    )
    r: int = option(8, "LoRA rank")
    alpha: float = option(16.0, "LoRA alpha: updates are scaled by alpha / r")
    dropout: float = option(0.05, "dropout on the LoRA input")
    target_modules: list[str] = option(
        [], "linear layers to adapt, e.g. q_proj,v_proj; empty: the architecture's default"
    )


@dataclass
class EvalConfig:
    every_n_steps: int | None = option(
        None,
        "steps between validation passes with generated answers and task metrics "
        "(None: train.eval_steps; 0: only before and after training)",
    )
    max_examples: int | None = option(100, "validation examples scored by generation per pass")
    metrics: list[str] = option([], "metric names; empty: the task's defaults")
    metric_for_best_model: str | None = option(
        None, "keep the model of the best pass by this metric (e.g. f1, val_loss); None: the last"
    )
    batch_size: int = option(16, "prompts per generation batch")
    generation: dict[str, Any] = option(
        {}, "overrides of the task's generation settings, e.g. {max_new_tokens: 16}"
    )
    test_files: list[str] = option(
        [], "test files for the before/after report; empty: the data's own test split, if any"
    )
    test_max_examples: int | None = option(None, "cap on test examples (None: all)")
    before_training: bool = option(True, "score the base model on the test split too")


@dataclass
class FinetuneConfig:
    output_dir: str = option("runs/finetune", "where the model or adapter, metrics and card go")
    overwrite: bool = option(False, "replace an existing run in output_dir")
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: TaskDataConfig = field(default_factory=TaskDataConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    #: short options of the command line: ``--task qa --model gpt2 --data squad --peft lora``
    cli_aliases: ClassVar[dict[str, str]] = {
        "task": "task.name",
        "model": "model.name_or_path",
        "data": "data.train_files",
        "peft": "peft.method",
    }

    @property
    def eval_every(self) -> int:
        e = self.eval.every_n_steps
        return self.train.eval_steps if e is None else e

    def validate(self) -> None:
        """Checks that need no task, model or data; the fine-tune pipeline checks the rest
        (the task's name and options, generation settings, metric names) before any work."""
        self.train.validate()
        self.hub.validate()
        if not self.model.name_or_path:
            raise ConfigError("set the base model: model.name_or_path (--model PATH_OR_HUB_NAME)")
        if not self.data.train_files and not self.data.dataset_name:
            raise ConfigError("no data: set data.train_files (--data FILES_OR_HUB_NAME)")
        if not 0 <= self.data.validation_split < 1:
            raise ConfigError("data.validation_split must be in [0, 1)")
        if self.task.max_length < 8:
            raise ConfigError("task.max_length must be >= 8")
        p = self.peft
        if p.r < 1 or p.alpha <= 0 or not 0 <= p.dropout < 1:
            raise ConfigError("peft: r must be >= 1, alpha > 0 and dropout in [0, 1)")
        e = self.eval
        if self.eval_every < 0 or e.batch_size < 1:
            raise ConfigError("eval.every_n_steps must be >= 0 and eval.batch_size >= 1")
        for name in ("max_examples", "test_max_examples"):
            if getattr(e, name) is not None and getattr(e, name) < 1:
                raise ConfigError(f"eval.{name} must be >= 1 or None")
