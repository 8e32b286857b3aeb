"""Task records -> token ids with the loss on the target only; the one place for this.

An example is ``prompt ids + target ids + EOS``; labels are -100 on the prompt (and later on
padding), so the loss covers the target and EOS. Prompt and target are tokenized apart, as
at generation time, where the model continues the prompt's own tokens. When an example is
longer than ``max_length``, the task's context column is shortened (never the target); an
example whose target does not fit even with an empty context is dropped. Both are counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers import PreTrainedTokenizerBase

from llmkit.errors import DataError
from llmkit.tasks.base import Task

IGNORE = -100


@dataclass
class EncodeStats:
    examples: int = 0  # kept
    truncated: int = 0  # kept with a shortened context
    dropped: int = 0  # target (with the prompt around an empty context) too long

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class EncodedDataset(torch.utils.data.Dataset):
    """Variable-length examples; :class:`PadCollate` pads each batch to its longest."""

    def __init__(self, examples: list[dict[str, list[int]]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.examples[i]


class PadCollate:
    """Right padding: ``pad_id`` in the inputs, -100 in the labels, 0 in the attention mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_example(
    task: Task, tokenizer: PreTrainedTokenizerBase, record: dict, max_length: int
) -> tuple[dict[str, list[int]] | None, bool]:
    """``({input_ids, labels}, truncated)``, or ``(None, False)`` when the target cannot fit."""
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no EOS token; fine-tuning needs one to end targets")
    target_ids = tokenizer(task.target(record), add_special_tokens=False)["input_ids"]
    target_ids.append(tokenizer.eos_token_id)
    fitted, truncated = fit_prompt(task, tokenizer, record, max_length - len(target_ids))
    if fitted is None:
        return None, False
    prompt_ids = tokenizer(task.prompt(fitted))["input_ids"]
    return {
        "input_ids": prompt_ids + target_ids,
        "labels": [IGNORE] * len(prompt_ids) + target_ids,
    }, truncated


def fit_prompt(
    task: Task, tokenizer: PreTrainedTokenizerBase, record: dict, budget: int
) -> tuple[dict | None, bool]:
    """The record with its context shortened until the prompt is at most ``budget`` tokens.

    Returns ``(record, truncated)``, or ``(None, False)`` when even an empty context is too
    long (or the task has no context column to shorten).
    """
    n = len(tokenizer(task.prompt(record))["input_ids"])
    if n <= budget:
        return record, False
    column = task.context_column
    if budget < 1 or column is None or not isinstance(record.get(column), str):
        return None, False
    if len(tokenizer(task.prompt({**record, column: ""}))["input_ids"]) > budget:
        return None, False
    context_ids = tokenizer(record[column], add_special_tokens=False)["input_ids"]
    keep = len(context_ids) - (n - budget)
    while keep > 0:
        # Re-tokenizing the shortened text can merge differently: check and shrink again.
        shorter = {**record, column: tokenizer.decode(context_ids[:keep]).rstrip("\ufffd")}
        over = len(tokenizer(task.prompt(shorter))["input_ids"]) - budget
        if over <= 0:
            return shorter, True
        keep -= over
    return {**record, column: ""}, True


def encode_records(
    task: Task, tokenizer: PreTrainedTokenizerBase, records: list[dict], max_length: int
) -> tuple[EncodedDataset, EncodeStats]:
    """Every record encoded; a split left with no example is an error naming the fix."""
    stats = EncodeStats()
    examples = []
    for record in records:
        example, truncated = encode_example(task, tokenizer, record, max_length)
        if example is None:
            stats.dropped += 1
            continue
        examples.append(example)
        stats.examples += 1
        stats.truncated += truncated
    if not examples:
        raise DataError(
            f"all {len(records)} examples are longer than task.max_length={max_length} tokens "
            "even with the context removed; raise task.max_length"
        )
    return EncodedDataset(examples), stats


def fit_records(
    task: Task, tokenizer: PreTrainedTokenizerBase, records: list[dict], budget: int
) -> tuple[list[dict], EncodeStats]:
    """Records whose prompts fit ``budget`` tokens (for generation), shortened as in training."""
    stats = EncodeStats()
    kept = []
    for record in records:
        fitted, truncated = fit_prompt(task, tokenizer, record, budget)
        if fitted is None:
            stats.dropped += 1
            continue
        kept.append(fitted)
        stats.examples += 1
        stats.truncated += truncated
    return kept, stats
