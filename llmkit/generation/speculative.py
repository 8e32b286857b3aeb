"""Speculative decoding through transformers' assisted generation, measured.

transformers does the drafting and verifying (``assistant_model=`` or
``prompt_lookup_num_tokens=``); what it lacks is the numbers that say whether it paid: it
returns no acceptance counts. They come from public API instead: the streamer sees one chunk
per target forward (accepted drafts + 1), and a forward hook on the draft counts the tokens it
proposed in each round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.errors import LlmkitError
from llmkit.generation.batched import Generation


@dataclass
class Acceptance:
    """Rounds of draft-then-verify over a set of prompts (a plain run has 1 token per round)."""

    target_forwards: int = 0  # = rounds: every round is one target forward
    new_tokens: int = 0
    accepted: int = 0  # drafted tokens the target agreed with (new_tokens - rounds)
    proposed: int | None = None  # drafted tokens (draft model only)
    by_position: list[float] = field(default_factory=list)  # P(draft token i accepted)

    @property
    def tokens_per_round(self) -> float:
        return self.new_tokens / max(1, self.target_forwards)

    @property
    def accepted_per_round(self) -> float:
        return self.accepted / max(1, self.target_forwards)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.proposed if self.proposed else None


def acceptance(records: list[Generation]) -> Acceptance:
    """Acceptance from the chunks each target forward added (batch-1 records).

    Position ``i`` (1-based) is accepted in a round when the round added more than ``i``
    tokens; its rate is over the rounds that proposed at least ``i`` drafts (all rounds when
    the proposals are not counted, as with prompt lookup). The last round of a prompt may be
    cut by ``max_new_tokens`` or a stop, which only lowers the figures.
    """
    chunks = [c for r in records for c in r.chunks]
    proposed = [p for r in records for p in r.proposed] if all(r.proposed for r in records) else []
    if proposed and len(proposed) != len(chunks):
        proposed = []
    stats = Acceptance(
        target_forwards=len(chunks),
        new_tokens=sum(chunks),
        accepted=sum(c - 1 for c in chunks),
        proposed=sum(proposed) if proposed else None,
    )
    longest = max(proposed) if proposed else max(chunks, default=1) - 1
    for i in range(1, longest + 1):
        tried = [c for j, c in enumerate(chunks) if not proposed or proposed[j] >= i]
        if tried:
            stats.by_position.append(sum(c > i for c in tried) / len(tried))
    return stats


@contextmanager
def count_forwards(model: torch.nn.Module) -> Iterator[Callable[[], int]]:
    """A counter of ``model``'s forward calls while the context is open (one per draft token)."""
    calls = [0]

    def hook(*_):
        calls[0] += 1

    handle = model.register_forward_hook(hook)
    try:
        yield lambda: calls[0]
    finally:
        handle.remove()


def check_draft_settings(num_beams: int, batch_size: int, num_prompts: int) -> None:
    """transformers refuses assisted generation with batches and ignores it with beams."""
    if num_beams > 1:
        raise LlmkitError(
            f"num_beams={num_beams} with a draft model or prompt lookup: transformers ignores "
            "the draft under beam search; use greedy or sampling (num_beams=1)"
        )
    if batch_size > 1 and num_prompts > 1:
        raise LlmkitError(
            f"batch_size={batch_size} with a draft model or prompt lookup: assisted generation "
            "runs one sequence at a time; set batch_size=1"
        )


def same_vocabulary(a: PreTrainedTokenizerBase, b: PreTrainedTokenizerBase) -> bool:
    return a.get_vocab() == b.get_vocab()


def draft_kwargs(
    target: PreTrainedModel,
    target_tokenizer: PreTrainedTokenizerBase,
    draft: PreTrainedModel,
    draft_tokenizer: PreTrainedTokenizerBase | None,
    *,
    num_tokens: int,
    schedule: str,
    confidence: float,
    where: str,
) -> dict:
    """``generate`` kwargs for drafting with ``draft``; its knobs go on its generation_config.

    transformers reads ``num_assistant_tokens``, ``num_assistant_tokens_schedule`` and
    ``assistant_confidence_threshold`` from the draft's generation_config only (passed to
    ``generate`` they are ignored). A draft with another vocabulary goes through universal
    assisted generation, which re-tokenizes text between the two tokenizers.
    """
    gc = draft.generation_config
    gc.num_assistant_tokens = num_tokens
    gc.num_assistant_tokens_schedule = schedule
    gc.assistant_confidence_threshold = confidence
    kwargs: dict = {"assistant_model": draft}
    if draft_tokenizer is not None and same_vocabulary(target_tokenizer, draft_tokenizer):
        return kwargs
    if draft_tokenizer is None:
        raise LlmkitError(
            f"draft {where}: no tokenizer to compare with the target's; save the draft's "
            "tokenizer in its folder (tokenizer.save_pretrained)"
        )
    t_size = target.config.get_text_config().vocab_size
    d_size = draft.config.get_text_config().vocab_size
    if t_size == d_size:
        # transformers picks universal assisted generation by vocabulary size alone: two
        # different tokenizers of one size would have their ids mixed silently.
        raise LlmkitError(
            f"draft {where}: its tokenizer differs from the target's but has the same vocabulary "
            f"size ({d_size}), which transformers cannot bridge; use a draft trained with the "
            "target's tokenizer (llmkit distill)"
        )
    # generate() also needs tokenizer= (the target's); generate_records adds it.
    return kwargs | {"assistant_tokenizer": draft_tokenizer}
