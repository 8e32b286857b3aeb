"""Batched generation: predictions that do not depend on the batch size.

Used by evaluation (task metrics), fine-tuning's validation and ``llmkit generate``. Prompts
are left-padded (so every row's new tokens start at the same column) and sorted by
length (so a batch carries little padding); greedy decoding by default, so the same prompt
gives the same prediction alone or in any batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from llmkit.errors import LlmkitError


@dataclass
class Generation:
    """One prompt's continuation with its token counts and timings (batch-level timings)."""

    completion: str
    prompt_tokens: int
    completion_tokens: int
    batch: int  # which generate call (batch) made it
    seconds: float  # the whole batch's generate call
    prefill_seconds: float | None  # prompt forward up to the first new token (None: beam search)
    chunks: list[int] = field(default_factory=list)  # new tokens per target forward (batch 1)
    proposed: list[int] | None = None  # draft tokens proposed per round, when counted


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
    records = generate_records(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        stop_strings=stop_strings,
        show_progress=show_progress,
        max_prompt_tokens=max_prompt_tokens,
        **generation_kwargs,
    )
    return [r.completion for r in records]


def generate_records(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    stop_strings: list[str] | None = None,
    show_progress: bool = False,
    max_prompt_tokens: int | None = None,
    draft_counter: Callable[[], int] | None = None,
    inner_streamer: Any = None,
    **generation_kwargs: Any,
) -> list[Generation]:
    """:func:`generate_texts` with token counts, timings and tokens per target forward.

    Timings come from a streamer that sees each decoding step (``put`` once with the prompt,
    then once per target forward), so prefill and decode are measured apart. ``draft_counter``
    (draft forwards so far) gives the draft tokens proposed per round; ``inner_streamer``
    (e.g. a ``TextIteratorStreamer``, batch 1) also receives every chunk.
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

    records: list[Generation | None] = [None] * len(prompts)
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
                probe = None if kwargs.get("num_beams", 1) > 1 else Probe(draft_counter)
                probe_kwargs = kwargs | ({"streamer": probe} if probe else {})
                if probe and inner_streamer is not None:
                    probe.inner = inner_streamer
                start = time.perf_counter()
                texts, counts = _generate_batch(
                    model, tokenizer, [encoded[i] for i in rows], device, probe_kwargs, stops
                )
                seconds = time.perf_counter() - start
                for i, text, n in zip(rows, texts, counts):
                    records[i] = Generation(
                        completion=_cut(text, stops),
                        prompt_tokens=len(encoded[i]),
                        completion_tokens=n,
                        batch=b // batch_size,
                        seconds=seconds,
                        prefill_seconds=probe.prefill_seconds(start) if probe else None,
                        chunks=probe.chunks if probe and len(rows) == 1 else [],
                        proposed=probe.proposed if probe and draft_counter else None,
                    )
                bar.update(len(rows))
    finally:
        model.train(was_training)
    return records  # type: ignore[return-value]


class Probe(BaseStreamer):
    """Sees every decoding step: when it happened and how many tokens it added per row.

    transformers calls ``put`` once with the prompt, then once per target forward with the
    tokens it accepted (1 in plain decoding; accepted drafts + 1 in assisted generation).
    """

    def __init__(self, draft_counter: Callable[[], int] | None = None, inner: Any = None):
        self.draft_counter, self.inner = draft_counter, inner
        self.times: list[float] = []
        self.chunks: list[int] = []
        self.proposed: list[int] = []
        self._seen_prompt = False
        self._drafts = draft_counter() if draft_counter else 0

    def put(self, value: torch.Tensor) -> None:
        if self.inner is not None:
            self.inner.put(value)
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        self.times.append(time.perf_counter())
        self.chunks.append(int(value.shape[-1]) if value.dim() > 1 else int(value.numel()))
        if self.draft_counter:
            drafts = self.draft_counter()
            self.proposed.append(drafts - self._drafts)
            self._drafts = drafts

    def end(self) -> None:
        if self.inner is not None:
            self.inner.end()

    def prefill_seconds(self, start: float) -> float | None:
        return self.times[0] - start if self.times else None


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
) -> tuple[list[str], list[int]]:
    """Decoded new tokens of one left-padded batch (special tokens, EOS and padding, dropped)
    and each row's count of new tokens before its first EOS or pad."""
    batch = tokenizer.pad({"input_ids": token_lists}, return_tensors="pt")
    input_ids = batch["input_ids"].to(device)
    if stops:
        criteria = StoppingCriteriaList(kwargs.get("stopping_criteria") or [])
        criteria.append(_StopOnStrings(tokenizer, input_ids.shape[1], stops))
        kwargs = kwargs | {"stopping_criteria": criteria}
    if "assistant_tokenizer" in kwargs:  # a draft of another vocabulary needs both tokenizers
        kwargs = kwargs | {"tokenizer": tokenizer}
    out = model.generate(
        input_ids=input_ids, attention_mask=batch["attention_mask"].to(device), **kwargs
    )
    new_tokens = out[:, input_ids.shape[1] :]
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True), _counts(new_tokens, kwargs)


def _counts(new_tokens: torch.Tensor, kwargs: dict) -> list[int]:
    """New tokens per row up to (not counting) the first EOS or pad: finished rows are padded."""
    ends = [kwargs.get("pad_token_id")]
    eos = kwargs.get("eos_token_id")
    ends += eos if isinstance(eos, list) else [eos]
    done = torch.zeros_like(new_tokens, dtype=torch.bool)
    for token in {e for e in ends if e is not None}:
        done |= new_tokens == token
    width = new_tokens.shape[1]
    first = torch.where(done.any(1), done.int().argmax(1), width)
    return [int(n) for n in first]


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
