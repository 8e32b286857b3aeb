"""Knowledge distillation: alpha * T^2 * KL(teacher || student) + (1 - alpha) * cross-entropy.

Both terms are token sums over the target positions divided by the global batch's target
count, like the loop's own loss, so gradient accumulation and processes change nothing. The
teacher is either run on the fly (full distribution, under no_grad) or read from a cache of its
top-K log-probs plus the tail mass (one "rest of the vocabulary" bucket), which keeps memory
and disk at K values per token for any vocabulary size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import default_collate

from llmkit.training.loop import LossFn, count_targets

TEACHER_LOGP, TEACHER_IDX = "teacher_logp", "teacher_idx"


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits that predict a target (position t predicts t + 1) and the target mask."""
    return logits[:, :-1], labels[:, 1:] != -100


def kl_full(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, t: float):
    """Sum over masked positions of KL(softmax(teacher / t) || softmax(student / t))."""
    log_q = F.log_softmax(student.float() / t, dim=-1)
    log_p = F.log_softmax(teacher.float() / t, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return kl[mask].sum()


def teacher_topk(teacher: torch.Tensor, k: int, t: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's top-K log-probs at temperature t and their token ids."""
    log_p = F.log_softmax(teacher.float() / t, dim=-1)
    return log_p.topk(min(k, log_p.shape[-1]), dim=-1)


def kl_topk(
    student: torch.Tensor, logp: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor, t: float
) -> torch.Tensor:
    """KL over the teacher's top-K tokens plus one bucket for the rest of the vocabulary.

    Equals :func:`kl_full` when K is the vocabulary size (the bucket is then empty).
    """
    log_q_all = F.log_softmax(student.float() / t, dim=-1)
    log_q = log_q_all.gather(-1, idx.long())
    p = logp.float().exp()
    kl = (p * (logp.float() - log_q)).sum(-1)
    p_tail = (1 - p.sum(-1)).clamp(min=0)
    q_tail = (1 - log_q.exp().sum(-1)).clamp(min=1e-12)
    tail = torch.where(p_tail > 0, p_tail * (p_tail.clamp(min=1e-12).log() - q_tail.log()), 0.0)
    return (kl + tail)[mask].sum()


def cross_entropy_sum(student: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(
        student.float().reshape(-1, student.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        reduction="sum",
    )


def distill_loss_fn(
    alpha: float,
    temperature: float,
    teacher: torch.nn.Module | None = None,
    topk: int = 0,
) -> LossFn:
    """The loop's ``loss_fn``: the teacher on the fly, or its cached top-K in the batch.

    With ``teacher`` and ``topk`` both set, the live teacher is cut to its top-K like the
    cache (the same loss as the cached run, for checking).
    """

    def loss_fn(model, batch, num_items):
        logp, idx = batch.pop(TEACHER_LOGP, None), batch.pop(TEACHER_IDX, None)
        labels = batch["labels"]
        logits = model(input_ids=batch["input_ids"]).logits
        student, mask = shifted(logits, labels)
        if logp is None:
            with torch.no_grad():
                t_logits = shifted(teacher(input_ids=batch["input_ids"]).logits, labels)[0]
            t_logits = t_logits[..., : student.shape[-1]]
            if topk:
                logp, idx = teacher_topk(t_logits, topk, temperature)
        if logp is None:
            kl = kl_full(student, t_logits, mask, temperature)
        else:
            kl = kl_topk(student, logp, idx, mask, temperature)
        ce = cross_entropy_sum(student, labels) if alpha < 1 else student.new_zeros(())
        return (alpha * temperature**2 * kl + (1 - alpha) * ce) / num_items

    return loss_fn


def teacher_cache_fn(teacher: torch.nn.Module, k: int, temperature: float, vocab: int) -> Callable:
    """Blocks (batch, length) -> the teacher's top-K log-probs and ids at the shifted positions."""

    @torch.inference_mode()
    def compute(input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(teacher.parameters()).device
        logits = teacher(input_ids=input_ids.to(device)).logits[:, :-1, :vocab]
        logp, idx = teacher_topk(logits, k, temperature)
        return logp.cpu(), idx.cpu()

    return compute


@torch.inference_mode()
def distill_validation(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    dataset: torch.utils.data.Dataset,
    accelerator: Accelerator,
    *,
    batch_size: int,
    max_batches: int | None = None,
) -> dict[str, float]:
    """Held-out cross-entropy of the student and its KL(teacher || student) at T = 1, per token.

    Sharded like :func:`llmkit.training.validation.validation_loss`: every process makes the
    same number of forward calls.
    """
    world, rank = accelerator.num_processes, accelerator.process_index
    num_batches = math.ceil(len(dataset) / batch_size)
    if max_batches is not None:
        num_batches = min(num_batches, max_batches)
    sums = torch.zeros(3, dtype=torch.float64, device=accelerator.device)  # nll, kl, count
    for b in range(rank, math.ceil(num_batches / world) * world, world):
        real = b < num_batches
        start = b * batch_size if real else 0
        rows = range(start, min(start + batch_size, len(dataset)))
        batch = collate_plain([dataset[i] for i in rows], accelerator.device)
        student_logits, mask = shifted(
            student(input_ids=batch["input_ids"]).logits, batch["labels"]
        )
        teacher_logits = shifted(teacher(input_ids=batch["input_ids"]).logits, batch["labels"])[0]
        teacher_logits = teacher_logits[..., : student_logits.shape[-1]]
        if real:
            sums[0] += cross_entropy_sum(student_logits, batch["labels"]).double()
            sums[1] += kl_full(student_logits, teacher_logits, mask, 1.0).double()
            sums[2] += count_targets(batch)
    nll, kl, count = accelerator.reduce(sums, reduction="sum").tolist()
    loss = nll / max(count, 1)
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0)), "val_kl": kl / max(count, 1)}


def collate_plain(items: list[dict], device: torch.device) -> dict[str, torch.Tensor]:
    """input_ids and labels only (cached teacher columns are for training)."""
    batch = default_collate([{k: it[k] for k in ("input_ids", "labels")} for it in items])
    return {k: v.to(device) for k, v in batch.items()}
