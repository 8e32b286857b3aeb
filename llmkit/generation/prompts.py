"""Prompts for ``llmkit generate``: from the command line, a text file or JSON Lines.

A prompt is text or chat messages; messages (and text with ``chat``) go through the
tokenizer's own chat template, so the model sees the format it was trained on.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerBase

from llmkit.data.sources import json_record
from llmkit.errors import DataError, LlmkitError

Prompt = str | list[dict]


def read_prompts(texts: list[str], path: str | None, field: str = "prompt") -> list[Prompt]:
    """``texts`` as given, or the lines of ``path`` (.txt) or its records (.jsonl)."""
    if not path:
        return list(texts)
    file = Path(path)
    if not file.is_file():
        raise DataError(f"prompts_file {file} not found; give a .txt or .jsonl file")
    lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
    if file.suffix not in (".jsonl", ".json"):
        prompts: list[Prompt] = [line for line in lines if line.strip()]
    else:
        prompts = []
        for lineno, raw in enumerate(lines, 1):
            if raw.strip():
                prompts.append(
                    _record_prompt(json_record(raw, file, lineno, None), file, lineno, field)
                )
    if not prompts:
        raise DataError(f"prompts_file {file}: no prompts in it; write one prompt per line")
    return prompts


def _record_prompt(record: dict, file: Path, lineno: int, field: str) -> Prompt:
    if isinstance(record.get("messages"), list):
        messages = record["messages"]
        if not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
            raise DataError(
                f"prompts_file {file} line {lineno}: messages must be objects with role and content"
            )
        return messages
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise DataError(
            f"prompts_file {file} line {lineno}: no text field {field!r} or messages (has "
            f"{', '.join(record) or 'none'}); set --prompt_field"
        )
    return value


def render(prompts: list[Prompt], tokenizer: PreTrainedTokenizerBase, chat: bool) -> list[str]:
    """Prompt texts; chat messages rendered with the generation prompt for the assistant."""
    if (chat or any(isinstance(p, list) for p in prompts)) and not tokenizer.chat_template:
        raise LlmkitError(
            "the tokenizer has no chat template: drop --chat (and messages), or use a model "
            "whose tokenizer_config.json has a chat_template"
        )
    out = []
    for p in prompts:
        if isinstance(p, str) and not chat:
            out.append(p)
            continue
        messages = p if isinstance(p, list) else [{"role": "user", "content": p}]
        out.append(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
    return out


def fit_prompts(
    texts: list[str],
    tokenizer: PreTrainedTokenizerBase,
    limit: int | None,
    truncate: bool,
) -> list[int]:
    """Indices of prompts over ``limit`` tokens; refused unless ``truncate`` (then cut later)."""
    if limit is None:
        return []
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    over = [i for i, n in enumerate(lengths) if n > limit]
    if over and not truncate:
        i = over[0]
        raise LlmkitError(
            f"prompt {i} has {lengths[i]} tokens, above the {limit} that fit (model positions "
            "minus max_new_tokens); shorten it, lower max_new_tokens, or drop --no-truncate to "
            "keep its last tokens"
        )
    return over
