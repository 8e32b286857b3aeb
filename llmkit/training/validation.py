"""Validation during training: the token-weighted loss, extra scores, the best pass kept.

The loss is sharded over processes and summed exactly. The training loop calls a
:class:`Validator` at step 0, every ``eval_steps`` and at the end. Each pass computes the
validation loss on the whole encoded split, then any ``scores`` the pipeline passes in
(fine-tuning passes the task's metrics on generated answers, computed by the evaluation layer,
so the numbers mean what ``llmkit evaluate`` reports). With a ``best_metric`` it keeps the
trainable weights of the best pass, to be restored before the model is saved.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from torch.utils.data import default_collate

from llmkit.permissions import ordinary_modes
from llmkit.training.loop import count_targets

LOWER_IS_BETTER = {"loss", "ppl", "ter"}
BEST_DIR = "best"
#: extra validation scores of a pass, e.g. ``{"val_f1": 61.2}``
ScoreFn = Callable[[torch.nn.Module], dict[str, float]]


@torch.inference_mode()
def validation_loss(
    model: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    accelerator: Accelerator,
    *,
    batch_size: int,
    max_batches: int | None = None,
    collate: Callable[[list], dict[str, torch.Tensor]] = default_collate,
) -> dict[str, float]:
    """Mean NLL per target token over the split (or its first ``max_batches`` batches)."""
    world, rank = accelerator.num_processes, accelerator.process_index
    num_batches = math.ceil(len(dataset) / batch_size)
    if max_batches is not None:
        num_batches = min(num_batches, max_batches)
    nll = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    count = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    # Every process makes the same number of forward calls (DDP and FSDP forwards are
    # collective): one short of a batch in the last round scores batch 0 and discards it.
    for b in range(rank, math.ceil(num_batches / world) * world, world):
        real = b < num_batches
        start = b * batch_size if real else 0
        rows = range(start, min(start + batch_size, len(dataset)))
        batch = {
            k: v.to(accelerator.device) for k, v in collate([dataset[i] for i in rows]).items()
        }
        out = model(**batch, num_items_in_batch=1)  # the loss is then the sum over targets
        if real:
            nll += out.loss.double()
            count += count_targets(batch)
    nll = accelerator.reduce(nll, reduction="sum").item()
    count = accelerator.reduce(count, reduction="sum").item()
    loss = nll / max(count, 1)
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0))}


class Validator:
    """The ``evaluate`` hook of :func:`llmkit.training.loop.train`."""

    def __init__(
        self,
        *,
        encoded: torch.utils.data.Dataset,
        collate: Callable[[list], dict[str, torch.Tensor]],
        accelerator: Accelerator,
        output_dir: Path,
        loss_batch_size: int,
        max_loss_batches: int | None,
        best_metric: str | None,
        scores: ScoreFn | None = None,
    ):
        self.encoded, self.collate, self.accelerator = encoded, collate, accelerator
        self.loss_batch_size, self.max_loss_batches = loss_batch_size, max_loss_batches
        self.scores = scores
        self.best_metric = (
            None if best_metric is None else "val_" + best_metric.removeprefix("val_")
        )
        self.best_dir = output_dir / BEST_DIR
        self.best_value = self._saved_best()

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        values = validation_loss(
            model,
            self.encoded,
            self.accelerator,
            batch_size=self.loss_batch_size,
            max_batches=self.max_loss_batches,
            collate=self.collate,
        )
        if self.scores is not None:
            values |= self.scores(model)
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
        state = trainable_state(self.accelerator, model)  # every process: FSDP2 gathers
        if self.accelerator.is_main_process:
            self.best_dir.mkdir(parents=True, exist_ok=True)
            save_file(state, self._weights)
            info = {"metric": self.best_metric, "value": value}
            (self.best_dir / "best.json").write_text(json.dumps(info))
            ordinary_modes(self.best_dir)
        self.accelerator.wait_for_everyone()

    def restore_best(self, model: torch.nn.Module) -> dict | None:
        """Load the best pass's weights into ``model``; ``{metric, value}`` or None."""
        if self.best_metric is None or not self._weights.is_file():
            return None
        load_trainable_state(self.accelerator, model, load_file(self._weights))
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


def trainable_state(accelerator: Accelerator, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What fine-tuning changes (every parameter for full tuning, the adapters for LoRA), as
    full tensors on the main process. Called on every process: under FSDP2 a parameter is a
    DTensor holding this rank's shard, so ``named_parameters()`` alone would save shards;
    ``get_state_dict`` gathers them (and is the plain ``state_dict()`` otherwise)."""
    full = accelerator.get_state_dict(model)  # a collective under FSDP2
    if not accelerator.is_main_process:
        return {}  # only the main process writes them
    unwrapped = accelerator.unwrap_model(model)
    trainable = {name for name, p in unwrapped.named_parameters() if p.requires_grad}
    return {name: t.detach().cpu().contiguous() for name, t in full.items() if name in trainable}


def load_trainable_state(
    accelerator: Accelerator, model: torch.nn.Module, state: dict[str, torch.Tensor]
) -> None:
    """Load full tensors saved by :func:`trainable_state` back into ``model``. Under FSDP2 each
    rank takes its shard of them (``set_model_state_dict`` with full tensors, as the FSDP2
    docs prescribe); other models load them directly."""
    if accelerator.is_fsdp2:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, strict=False)
        _, unexpected = set_model_state_dict(model, state, options=options)
    else:
        _, unexpected = accelerator.unwrap_model(model).load_state_dict(state, strict=False)
    if unexpected:
        raise RuntimeError(f"best weights do not match the model: {unexpected[:3]}")
