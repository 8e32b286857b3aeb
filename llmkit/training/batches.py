"""The data order as a pure function of the micro-batch number.

Micro-batch ``g`` of the whole run is a slice of a seeded permutation of its epoch, and process
``r`` of ``W`` takes micro-batches ``r, r+W, ...``. So a resumed run reads exactly what the
uninterrupted one would have, and two processes see what one process with twice the gradient
accumulation sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch


def micro_batch_indices(g: int, num_examples: int, batch_size: int, seed: int) -> np.ndarray:
    per_epoch = num_examples // batch_size
    if per_epoch == 0:
        raise ValueError("fewer examples than one batch")
    epoch, slot = divmod(g, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    return order[slot * batch_size : (slot + 1) * batch_size]


def micro_batches(
    dataset: torch.utils.data.Dataset,
    *,
    batch_size: int,
    seed: int,
    start: int,
    rank: int,
    world: int,
    collate: Callable[[list], dict[str, torch.Tensor]],
) -> Iterator[dict[str, torch.Tensor]]:
    """This process's micro-batches from global micro-batch ``start`` on (start % world == 0)."""
    g = start + rank
    while True:
        idx = micro_batch_indices(g, len(dataset), batch_size, seed)
        yield collate([dataset[int(i)] for i in idx])
        g += world


def epochs_per_step(num_examples: int, global_batch: int) -> float:
    return global_batch / max(1, num_examples)
