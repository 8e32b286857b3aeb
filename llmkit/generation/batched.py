"""Batched generation: predictions that do not depend on the batch size.

Used by evaluation (task metrics), fine-tuning's validation and ``llmkit generate``. Prompts
are left-padded (so every row's new tokens start at the same column) and sorted by
length (so a batch carries little padding); greedy decoding by default, so the same prompt
gives the same prediction alone or in any batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from llmkit.errors import LlmkitError


def generate_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    stop_strings: list[str] | None = None,
    show_progress: bool = False,
    max_prompt_tokens: int | None = None,
    **generation_kwargs: Any,
) -> list[str]:
    """One continuation per prompt, in prompt order: cut at the first stop string, trimmed.

    ``generation_kwargs`` go to ``model.generate`` and override the defaults
    (``do_sample=False``, ``pad_token_id`` and ``eos_token_id`` from the tokenizer). A row
    stops early once its continuation holds a stop string; the text is cut there anyway, so
    stopping early only saves time. A prompt longer than ``max_prompt_tokens`` keeps its last
    tokens (and a leading BOS): the end is what the model continues.
    """
    _validate(tokenizer, max_new_tokens, batch_size)
    if max_prompt_tokens is not None and max_prompt_tokens < 1:
        raise LlmkitError(f"max_prompt_tokens={max_prompt_tokens}: must be at least 1")
    if not prompts:
        return []
    encoded = tokenizer(list(prompts))["input_ids"]
    if max_prompt_tokens is not None:
        encoded = [keep_last(ids, max_prompt_tokens, tokenizer.bos_token_id) for ids in encoded]
    empty = [i for i, ids in enumerate(encoded) if not ids]
    if empty:
        raise LlmkitError(
            f"prompt {empty[0]} encodes to no tokens: give every prompt some text "
            "(or use a tokenizer that adds a BOS token)"
        )
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)
    kwargs = _generation_defaults(tokenizer, max_new_tokens) | generation_kwargs
    device = _model_device(model)
    stops = [s for s in stop_strings or [] if s]

    predictions: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with (
            _left_padding(tokenizer),
            torch.inference_mode(),
            tqdm(
                total=len(prompts), unit="prompt", desc="generate", disable=not show_progress
            ) as bar,
        ):
            for b in range(0, len(order), batch_size):
                rows = order[b : b + batch_size]
                texts = _generate_batch(
                    model, tokenizer, [encoded[i] for i in rows], device, kwargs, stops
                )
                for i, text in zip(rows, texts):
                    predictions[i] = _cut(text, stops)
                bar.update(len(rows))
    finally:
        model.train(was_training)
    return predictions


def keep_last(ids: list[int], limit: int, bos_token_id: int | None) -> list[int]:
    """The last ``limit`` tokens of a prompt; a leading BOS stays first."""
    if len(ids) <= limit:
        return ids
    if ids and ids[0] == bos_token_id and limit > 1:
        return ids[:1] + ids[len(ids) - limit + 1 :]
    return ids[len(ids) - limit :]


def _validate(tokenizer: PreTrainedTokenizerBase, max_new_tokens: int, batch_size: int) -> None:
    """One-line errors for settings generate() would reject less clearly or not at all."""
    if max_new_tokens < 1:
        raise LlmkitError(f"max_new_tokens={max_new_tokens}: must be at least 1")
    if batch_size < 1:
        raise LlmkitError(f"batch_size={batch_size}: must be at least 1")
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is None:
        raise LlmkitError(
            "tokenizer has neither pad_token nor eos_token: set tokenizer.pad_token "
            "so prompts can be batched"
        )


def _generation_defaults(tokenizer: PreTrainedTokenizerBase, max_new_tokens: int) -> dict:
    """Greedy, padded with the tokenizer's pad (or EOS), stopping at EOS."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    defaults: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "pad_token_id": pad,
    }
    if tokenizer.eos_token_id is not None:
        defaults["eos_token_id"] = tokenizer.eos_token_id
    return defaults


@contextmanager
def _left_padding(tokenizer: PreTrainedTokenizerBase) -> Iterator[None]:
    """Left padding (and a pad token, if missing) for the call only; the caller's is restored."""
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield
    finally:
        tokenizer.padding_side = side
        if pad is None:
            tokenizer.pad_token = None


def _generate_batch(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    token_lists: list[list[int]],
    device: torch.device,
    kwargs: dict,
    stops: list[str],
) -> list[str]:
    """Decoded new tokens of one left-padded batch; special tokens (EOS, padding) dropped."""
    batch = tokenizer.pad({"input_ids": token_lists}, return_tensors="pt")
    input_ids = batch["input_ids"].to(device)
    if stops:
        criteria = StoppingCriteriaList(kwargs.get("stopping_criteria") or [])
        criteria.append(_StopOnStrings(tokenizer, input_ids.shape[1], stops))
        kwargs = kwargs | {"stopping_criteria": criteria}
    out = model.generate(
        input_ids=input_ids, attention_mask=batch["attention_mask"].to(device), **kwargs
    )
    new_tokens = out[:, input_ids.shape[1] :]
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


class _StopOnStrings(StoppingCriteria):
    """Stops a row once its continuation (never its prompt) contains a stop string.

    transformers' own ``stop_strings`` also match text that straddles the prompt's end,
    which would stop a row whose continuation holds no stop string.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_width: int, stops: list[str]):
        self.tokenizer, self.prompt_width, self.stops = tokenizer, prompt_width, stops

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(
            input_ids[:, self.prompt_width :], skip_special_tokens=True
        )
        done = [any(s in text for s in self.stops) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _cut(text: str, stops: Sequence[str]) -> str:
    """Text before the earliest stop string, whitespace trimmed."""
    hits = [h for h in (text.find(s) for s in stops) if h >= 0]
    if hits:
        text = text[: min(hits)]
    return text.strip()


def _model_device(model: PreTrainedModel) -> torch.device:
    """The device of the model's first parameter: where prompts must go."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")
