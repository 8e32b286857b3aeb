"""Perplexity of a model on plain text: read a split's documents, score them as one stream.

Documents are read the way pretraining reads them (a ``.txt`` file is paragraphs separated
by blank lines; tabular files give one document per row of ``text_column``) and joined with
EOS, so the number measures what pretraining's validation loss measures, with the sliding
window of :mod:`llmkit.evaluation.perplexity` instead of disjoint blocks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import datasets
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.data.sources import (
    is_hub_name,
    load_files,
    load_saved,
    resolve_files,
    split_files,
    texts_of,
)
from llmkit.errors import DataError, LlmkitError
from llmkit.evaluation.perplexity import perplexity, texts_to_stream
from llmkit.models.load import max_positions


@dataclass
class TextEvalResult:
    metrics: dict[str, float]
    num_examples: int
    num_tokens: int
    windows: int
    context_length: int
    stride: int
    seconds: float


def load_texts(
    sources: list[str],
    split: str,
    text_column: str = "text",
    *,
    dataset_config: str | None = None,
    max_examples: int | None = None,
) -> list[str]:
    """The non-blank documents of ``split``: local files (a folder's ``<split>.*``) or the Hub.

    Splits are found as for task data (:func:`llmkit.data.sources.split_files`).
    """
    if len(sources) == 1 and is_hub_name(sources[0]):
        texts = _hub_texts(sources[0], dataset_config, split, text_column)
    else:
        resolve_files(sources, option="data")  # missing paths are named under this option
        texts = []
        for source in sources:
            for f in split_files(source, split):
                ds = load_saved(f, split) if f.is_dir() else load_files([f], text_column)
                texts += texts_of(ds, text_column, [f])
    if not texts:
        raise DataError(f"split {split!r} of {', '.join(sources)} holds no text; check --data")
    return texts[:max_examples] if max_examples else texts


def _hub_texts(name: str, config: str | None, split: str, column: str) -> list[str]:
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # datasets raises many types for a missing name, split or network
        text = " ".join(str(e).split())[:300] or type(e).__name__
        raise DataError(
            f"--data {name}: cannot load split {split!r} from the Hub ({text}); "
            "check the name, --dataset_config and --split"
        ) from None
    return texts_of(ds, column, name)


def evaluate_text(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    context_length: int | None = None,
    stride: int | None = None,
    batch_size: int = 8,
    show_progress: bool = False,
) -> TextEvalResult:
    """Sliding-window perplexity of the documents joined by EOS.

    ``context_length`` defaults to the model's maximum positions, ``stride`` to half of it.
    """
    if context_length is None:
        context_length = max_positions(model.config)
        if context_length is None:
            raise LlmkitError(
                "the model's config gives no maximum length: set perplexity.context_length"
            )
    stride = stride or max(1, context_length // 2)
    start = time.perf_counter()
    stream = texts_to_stream(tokenizer, texts)
    result = perplexity(
        model,
        stream,
        context_length=context_length,
        stride=stride,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    return TextEvalResult(
        metrics={"perplexity": result.perplexity, "mean_nll": result.mean_nll},
        num_examples=len(texts),
        num_tokens=result.tokens_scored,
        windows=result.windows,
        context_length=context_length,
        stride=stride,
        seconds=time.perf_counter() - start,
    )
