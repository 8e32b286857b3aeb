"""Generation settings as ``generate`` kwargs, with unknown names refused before any work."""

from __future__ import annotations

from typing import Any

from transformers import GenerationConfig

from llmkit.errors import ConfigError

#: kwargs llmkit sets itself; passing them through ``generation`` would fight it
RESERVED = ("streamer", "assistant_model", "input_ids", "attention_mask", "stopping_criteria")


def sampling_kwargs(
    *,
    do_sample: bool,
    temperature: float,
    top_k: int,
    top_p: float,
    repetition_penalty: float,
    num_beams: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Greedy unless ``do_sample``; sampling knobs only when sampling (transformers warns)."""
    check_options(extra)
    kwargs: dict[str, Any] = {"do_sample": do_sample, "num_beams": num_beams}
    if do_sample:
        kwargs |= {"temperature": temperature, "top_k": top_k or None, "top_p": top_p}
    if repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = repetition_penalty
    return kwargs | extra


def check_options(options: dict[str, Any]) -> None:
    known = GenerationConfig().to_dict()
    for key in options:
        if key in RESERVED:
            raise ConfigError(f"generation.{key}: set by llmkit itself; remove it")
        if key not in known:
            raise ConfigError(
                f"generation.{key}: not a transformers GenerationConfig field; see "
                "https://huggingface.co/docs/transformers/main_classes/text_generation"
            )


class Throughput:
    """Prefill and decode tokens/s over batched records (timings are per generate call)."""

    def __init__(self, records: list) -> None:
        batches: dict[int, list] = {}
        for r in records:
            batches.setdefault(r.batch, []).append(r)
        self.prompt_tokens = sum(r.prompt_tokens for r in records)
        self.new_tokens = sum(r.completion_tokens for r in records)
        self.seconds = sum(rows[0].seconds for rows in batches.values())
        pre = [rows[0].prefill_seconds for rows in batches.values()]
        self.prefill_seconds = sum(pre) if all(p is not None for p in pre) else None

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / max(self.seconds, 1e-9)

    @property
    def prefill_tokens_per_s(self) -> float | None:
        if self.prefill_seconds is None:
            return None
        return self.prompt_tokens / max(self.prefill_seconds, 1e-9)

    @property
    def decode_tokens_per_s(self) -> float | None:
        """New tokens over the time after prefill (which made each row's first token)."""
        if self.prefill_seconds is None:
            return None
        return self.new_tokens / max(self.seconds - self.prefill_seconds, 1e-9)
