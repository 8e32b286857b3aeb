"""Causal-LM cross-entropy computed chunk by chunk, its gradient written into the logits.

Written by hand because torch's ``F.cross_entropy`` (which transformers' loss calls) makes
three more tensors the size of the logits on the way: the log-softmax output, a zero-filled
gradient for the NLL's backward and the log-softmax backward's result. On a CPU training a small
model those passes over memory are a large share of a step (profiled: log-softmax forward and
backward plus that zero fill, about a quarter of a `tiny` step in fp32). This does the same
sums on row blocks that stay in cache and leaves d(loss)/d(logits) in the logits' own memory,
as Liger-kernel's Triton cross-entropy does on GPUs: 1.10x a `tiny` training step, 1.29x a
`small` one in fp32 (bench/train_step.py). The value and gradient equal ``F.cross_entropy``
to float rounding (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Logit elements per block: 1 MiB of float32, within a core's L2 cache on the CPUs here.
BLOCK_ELEMENTS = 1 << 18


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Token-sum cross-entropy / ``num_items`` over 2-D ``logits`` (rows, vocabulary).

    The forward overwrites ``logits`` with the loss's gradient (softmax minus one-hot, scaled
    by 1 / num_items, zero on ignored rows), so the caller must own them and not read them
    afterwards; the backward only scales that by the incoming gradient.
    """

    @staticmethod
    def forward(ctx, logits, targets, num_items, block_elements):
        rows = max(1, block_elements // logits.shape[1])
        valid = (targets != -100)[:, None]
        safe = targets.clamp(min=0)[:, None]
        scale = valid.to(logits.dtype) / num_items
        minus_one = logits.new_full((min(rows, logits.shape[0]), 1), -1.0)
        total = logits.new_zeros(())
        for start in range(0, logits.shape[0], rows):
            block = slice(start, start + rows)
            x, t = logits[block], safe[block]
            logp = torch.log_softmax(x, dim=1)  # one fused pass; the block stays in cache
            total -= logp.gather(1, t).masked_fill_(~valid[block], 0.0).sum()
            torch.exp(logp, out=x).scatter_add_(1, t, minus_one[: x.shape[0]]).mul_(scale[block])
        ctx.save_for_backward(logits)
        return total / num_items

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_output), None, None, None


def chunked_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    num_items: torch.Tensor,
    block_elements: int = BLOCK_ELEMENTS,
) -> torch.Tensor:
    """Sum of token cross-entropies over ``targets`` != -100, divided by ``num_items``.

    ``logits`` (rows, vocabulary) are consumed: they hold the gradient afterwards."""
    return _ChunkedCrossEntropy.apply(logits, targets, num_items, block_elements)


def causal_lm_loss(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], num_items: torch.Tensor
) -> torch.Tensor:
    """The training loop's ``loss_fn``: what ``model(**batch, num_items_in_batch=n).loss``
    returns for a causal LM (labels shifted by one, -100 ignored), through
    :func:`chunked_cross_entropy`. The logits never leave this function."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits
    targets = F.pad(batch["labels"], (0, 1), value=-100)[:, 1:]
    # .float() is the same tensor in fp32 and an owned copy under bf16/fp16 autocast
    flat = logits.float().reshape(-1, logits.shape[-1])
    return chunked_cross_entropy(flat, targets.reshape(-1).to(flat.device), num_items)


def has_plain_causal_lm_loss(model: torch.nn.Module) -> bool:
    """Whether the model's own loss is transformers' plain causal-LM cross-entropy, which
    :func:`causal_lm_loss` reproduces (not one that adds a router's auxiliary loss)."""
    config = getattr(model, "config", None)
    return getattr(model, "loss_type", None) == "ForCausalLM" and not getattr(
        config, "output_router_logits", False
    )
