"""Validation during fine-tuning: the loss, the task's metrics on generated answers, the best.

The training loop calls a :class:`TaskValidator` at step 0, every ``eval.every_n_steps`` and
at the end. Each pass computes the validation loss on the whole encoded split and the task's
metrics on a sample of it by generating answers (through ``evaluate_task``, so the numbers
mean what ``llmkit evaluate`` reports). With a ``metric_for_best_model`` it keeps the
trainable weights of the best pass, to be restored before the model is saved.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerBase

from llmkit.evaluation.report import headline_values
from llmkit.evaluation.task_eval import TaskEvalResult, evaluate_task
from llmkit.tasks.base import Task
from llmkit.tasks.encode import EncodedDataset, PadCollate, pad_id
from llmkit.training.validation import validation_loss

LOWER_IS_BETTER = {"loss", "ppl", "ter"}
BEST_DIR = "best"


def score_task(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    records: list[dict],
    *,
    metrics: list[str],
    batch_size: int,
    generation: dict | None = None,
    accelerator: Accelerator | None = None,
) -> TaskEvalResult:
    """Greedy answers for ``records`` (already fitted to the prompt budget), scored; the
    processes of ``accelerator`` share the generation."""
    return evaluate_task(
        model,
        tokenizer,
        task,
        records,
        metrics=metrics or None,
        batch_size=batch_size,
        generation=generation,
        accelerator=accelerator,
    )


def headline(result: TaskEvalResult, metrics: list[str]) -> dict[str, float]:
    """The numbers a result is quoted by (ROUGE's F-measures, not its precisions)."""
    out: dict[str, float] = {}
    for name in metrics:
        out.update(headline_values(name, result.by_metric.get(name, result.metrics)))
    return {k: float(v) for k, v in out.items() if isinstance(v, int | float)}


class TaskValidator:
    """The ``evaluate`` hook of :func:`llmkit.training.loop.train` for a task."""

    def __init__(
        self,
        *,
        task: Task,
        tokenizer: PreTrainedTokenizerBase,
        encoded: EncodedDataset,
        records: list[dict],
        accelerator: Accelerator,
        output_dir: Path,
        metrics: list[str],
        batch_size: int,
        generation: dict,
        loss_batch_size: int,
        max_loss_batches: int | None,
        best_metric: str | None,
    ):
        self.task, self.tokenizer, self.encoded, self.records = task, tokenizer, encoded, records
        self.accelerator, self.metrics = accelerator, metrics or list(task.default_metrics)
        self.batch_size, self.loss_batch_size = batch_size, loss_batch_size
        self.generation = generation
        self.max_loss_batches = max_loss_batches
        self.best_metric = (
            None if best_metric is None else "val_" + best_metric.removeprefix("val_")
        )
        self.best_dir = output_dir / BEST_DIR
        self.best_value = self._saved_best()
        self.collate = PadCollate(pad_id(tokenizer))

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        values = validation_loss(
            model,
            self.encoded,
            self.accelerator,
            batch_size=self.loss_batch_size,
            max_batches=self.max_loss_batches,
            collate=self.collate,
        )
        if self.records:
            result = score_task(
                self.accelerator.unwrap_model(model),
                self.tokenizer,
                self.task,
                self.records,
                metrics=self.metrics,
                batch_size=self.batch_size,
                generation=self.generation,
                accelerator=self.accelerator,
            )
            values |= {f"val_{k}": v for k, v in headline(result, self.metrics).items()}
        if self.best_metric is not None:
            self._keep_if_best(model, values)
        return values

    def _keep_if_best(self, model: torch.nn.Module, values: dict[str, float]) -> None:
        value = values[self.best_metric]
        lower = self.best_metric.rsplit("_", 1)[-1] in LOWER_IS_BETTER
        if not math.isfinite(value):
            return
        # Ties go to the later pass: the same score after more training.
        best = self.best_value
        if best is not None and ((value > best) if lower else (value < best)):
            return
        self.best_value = value
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.best_dir.mkdir(parents=True, exist_ok=True)
            save_file(trainable_state(self.accelerator.unwrap_model(model)), self._weights)
            info = {"metric": self.best_metric, "value": value}
            (self.best_dir / "best.json").write_text(json.dumps(info))
        self.accelerator.wait_for_everyone()

    def restore_best(self, model: torch.nn.Module) -> dict | None:
        """Load the best pass's weights into ``model``; ``{metric, value}`` or None."""
        if self.best_metric is None or not self._weights.is_file():
            return None
        state = load_file(self._weights)
        _, unexpected = self.accelerator.unwrap_model(model).load_state_dict(state, strict=False)
        if unexpected:
            raise RuntimeError(f"best weights do not match the model: {unexpected[:3]}")
        info = json.loads((self.best_dir / "best.json").read_text())
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            shutil.rmtree(self.best_dir)
        return info

    @property
    def _weights(self) -> Path:
        return self.best_dir / "trainable.safetensors"

    def _saved_best(self) -> float | None:
        """A resumed run continues the comparison with the best pass before the interruption."""
        path = self.best_dir / "best.json"
        return json.loads(path.read_text())["value"] if path.is_file() else None


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What fine-tuning changes: every parameter for full tuning, the adapters for LoRA."""
    return {
        name: p.detach().cpu().contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad
    }
