"""Token-weighted validation loss, sharded over processes and summed exactly."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from accelerate import Accelerator
from torch.utils.data import default_collate

from llmkit.training.loop import count_targets


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
