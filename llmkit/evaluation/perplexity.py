"""Sliding-window perplexity of a causal LM over one long token stream.

A window is ``context_length`` input tokens; the model predicts the next token at every
position, so a window starting at ``start`` can score targets ``start + 1 .. start +
context_length``. Windows start every ``stride`` tokens and each scores only the targets no
earlier window scored, so every token but the first is scored exactly once, and with the
most context the stride allows (at least ``context_length - stride`` tokens once the stream
is long enough). ``stride == context_length`` gives disjoint windows.

:func:`rolling_loglikelihood` scores documents one by one the way lm-evaluation-harness's
``loglikelihood_rolling`` does, so its numbers can stand beside published ones: a prefix
token (BOS, else EOS) before each document so its first token is scored too, then disjoint
windows of ``max_length`` predictions; the last, shorter window keeps a full context.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.errors import LlmkitError


@dataclass(frozen=True)
class PerplexityResult:
    """Totals over the stream; ``mean_nll`` is token-weighted, in nats."""

    nll_sum: float
    tokens_scored: int
    mean_nll: float
    perplexity: float
    windows: int


@dataclass(frozen=True)
class _Window:
    """Inputs are ``ids[start:stop]``; targets ``first_target .. stop`` are scored."""

    start: int
    stop: int
    first_target: int


def texts_to_stream(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[int]:
    """One token stream from many documents, joined by EOS so the model sees the boundary."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise LlmkitError(
            "tokenizer has no eos_token: set tokenizer.eos_token so documents can be joined"
        )
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    stream: list[int] = list(encoded[0])
    for ids in encoded[1:]:
        stream.append(eos)
        stream.extend(ids)
    return stream


def perplexity(
    model: PreTrainedModel,
    input_ids: Sequence[int] | torch.Tensor,
    *,
    context_length: int,
    stride: int,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    show_progress: bool = False,
) -> PerplexityResult:
    """Perplexity of ``input_ids`` (a 1-D stream) scored with overlapping windows."""
    ids = _as_stream(input_ids)
    _validate(model, len(ids), context_length, stride, batch_size)
    windows = list(_plan_windows(len(ids), context_length, stride))
    device = torch.device(device) if device is not None else _model_device(model)
    keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    nll_sum, scored = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with (
            torch.inference_mode(),
            tqdm(
                total=len(windows), unit="window", desc="perplexity", disable=not show_progress
            ) as bar,
        ):
            for i in range(0, len(windows), batch_size):
                batch = windows[i : i + batch_size]
                batch_nll, batch_count = _score_batch(model, ids, batch, device, keep_logits)
                nll_sum += batch_nll
                scored += batch_count
                bar.update(len(batch))
    finally:
        model.train(was_training)

    mean_nll = nll_sum / scored
    return PerplexityResult(
        nll_sum=nll_sum,
        tokens_scored=scored,
        mean_nll=mean_nll,
        perplexity=math.exp(mean_nll),
        windows=len(windows),
    )


def rolling_windows(n_tokens: int, max_length: int) -> list[_Window]:
    """lm-eval's rolling windows over ``[prefix] + tokens`` (indices into that sequence).

    The first window reads the prefix and predicts the first ``max_length`` tokens; each
    later one predicts the next ``max_length`` (or fewer at the end) from the
    ``max_length`` inputs just before them. Written from lm-eval's documented behaviour
    (``get_rolling_token_windows`` with ``context_len=1`` and ``make_disjoint_window``),
    since it exposes the windows only as a generator of token lists.
    """
    if n_tokens == 0:
        return []
    first = min(max_length, n_tokens)
    windows = [_Window(start=0, stop=first, first_target=1)]
    predicted = first
    while predicted < n_tokens:
        end = predicted + min(n_tokens - predicted, max_length)
        windows.append(_Window(start=end - max_length, stop=end, first_target=predicted + 1))
        predicted = end
    return windows


def rolling_loglikelihood(
    model: PreTrainedModel,
    documents: Sequence[Sequence[int]],
    *,
    max_length: int,
    prefix_token: int,
    batch_size: int = 8,
    device: torch.device | str | None = None,
    show_progress: bool = False,
) -> list[float]:
    """Total log-likelihood (nats, <= 0) of each tokenized document, as lm-eval scores it."""
    if max_length < 1:
        raise LlmkitError(f"max_length={max_length}: must be at least 1")
    _validate(model, 2, max_length, max_length, batch_size)
    seqs = [torch.tensor([prefix_token, *doc], dtype=torch.long) for doc in documents]
    jobs = [(i, w) for i, d in enumerate(documents) for w in rolling_windows(len(d), max_length)]
    device = torch.device(device) if device is not None else _model_device(model)
    keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
    totals = [0.0] * len(documents)
    was_training = model.training
    model.eval()
    try:
        with (
            torch.inference_mode(),
            tqdm(total=len(jobs), unit="window", desc="rolling", disable=not show_progress) as bar,
        ):
            for i in range(0, len(jobs), batch_size):
                batch = jobs[i : i + batch_size]
                rows = _score_rows(
                    model, [seqs[d] for d, _ in batch], [w for _, w in batch], device, keep_logits
                )
                for (doc, _), nll in zip(batch, rows):
                    totals[doc] -= nll
                bar.update(len(batch))
    finally:
        model.train(was_training)
    return totals


def _as_stream(input_ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """A 1-D int64 CPU tensor; a (1, N) batch of one is accepted too."""
    ids = torch.as_tensor(input_ids, dtype=torch.long).cpu()
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise LlmkitError(
            f"input_ids has shape {tuple(ids.shape)}: pass one token stream (1-D), "
            "e.g. from texts_to_stream"
        )
    return ids


def _validate(
    model: PreTrainedModel, n_tokens: int, context_length: int, stride: int, batch_size: int
) -> None:
    """Fail early, in one line, on settings that would give a wrong or impossible score."""
    if context_length < 1:
        raise LlmkitError(f"context_length={context_length}: must be at least 1")
    if stride < 1:
        raise LlmkitError(f"stride={stride}: must be at least 1 (try stride={context_length})")
    if stride > context_length:
        raise LlmkitError(
            f"stride={stride} is larger than context_length={context_length}: tokens between "
            f"windows would never be scored; use stride <= {context_length}"
        )
    if batch_size < 1:
        raise LlmkitError(f"batch_size={batch_size}: must be at least 1")
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos is not None and context_length > max_pos:
        raise LlmkitError(
            f"context_length={context_length} exceeds the model's max_position_embeddings="
            f"{max_pos}; use context_length <= {max_pos}"
        )
    if n_tokens < 2:
        raise LlmkitError(
            f"input_ids has {n_tokens} token(s): perplexity needs at least 2 "
            "(one to condition on, one to score)"
        )


def _plan_windows(n_tokens: int, context_length: int, stride: int) -> Iterator[_Window]:
    """Windows every ``stride`` tokens until the last token has been scored."""
    last_scored = 0  # token 0 is never a target
    start = 0
    while last_scored < n_tokens - 1:
        stop = min(start + context_length, n_tokens - 1)
        yield _Window(start=start, stop=stop, first_target=last_scored + 1)
        last_scored = stop
        start += stride


def _score_batch(
    model: PreTrainedModel,
    ids: torch.Tensor,
    batch: list[_Window],
    device: torch.device,
    keep_logits: bool,
) -> tuple[float, int]:
    """Summed NLL and count of the new targets of a batch of right-padded windows."""
    rows = _score_rows(model, [ids] * len(batch), batch, device, keep_logits)
    return float(sum(rows)), sum(w.stop - w.first_target + 1 for w in batch)


def _score_rows(
    model: PreTrainedModel,
    seqs: list[torch.Tensor],
    batch: list[_Window],
    device: torch.device,
    keep_logits: bool,
) -> list[float]:
    """NLL of the new targets of each window (window ``i`` over ``seqs[i]``), right-padded."""
    width = max(w.stop - w.start for w in batch)
    inputs = torch.zeros(len(batch), width, dtype=torch.long)
    targets = torch.zeros(len(batch), width, dtype=torch.long)
    attention = torch.zeros(len(batch), width, dtype=torch.long)
    scored = torch.zeros(len(batch), width, dtype=torch.bool)
    for row, w in enumerate(batch):
        length = w.stop - w.start
        inputs[row, :length] = seqs[row][w.start : w.stop]
        targets[row, :length] = seqs[row][w.start + 1 : w.stop + 1]
        attention[row, :length] = 1
        scored[row, w.first_target - w.start - 1 : length] = True

    # Logits are only needed from the first scored position on: skip the rest of lm_head.
    first_needed = min(w.first_target - w.start - 1 for w in batch)
    kwargs: dict = {"use_cache": False}
    if keep_logits:
        kwargs["logits_to_keep"] = width - first_needed
    else:
        first_needed = 0
    if not bool(attention.all()):
        kwargs["attention_mask"] = attention.to(device)

    logits = model(input_ids=inputs.to(device), **kwargs).logits
    logits = logits[:, logits.shape[1] - (width - first_needed) :]  # if logits_to_keep ignored
    mask = scored[:, first_needed:].to(device)
    picked = logits[mask].float()
    log_probs = torch.log_softmax(picked, dim=-1)
    wanted = targets[:, first_needed:].to(device)[mask]
    nll = -log_probs.gather(1, wanted.unsqueeze(1))[:, 0].double()
    row_of = mask.nonzero()[:, 0]  # row of each picked target, in the order mask picks them
    per_row = torch.zeros(len(batch), dtype=torch.double, device=nll.device)
    per_row.index_add_(0, row_of, nll)
    return per_row.tolist()


def _model_device(model: PreTrainedModel) -> torch.device:
    """Where the inputs go by default: the device of the model's first parameter."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")
