"""Perplexity of a model on plain text: read a split's documents, score them as one stream.

Documents are read the way pretraining reads them (a ``.txt`` file is paragraphs separated
by blank lines; tabular files give one document per row of ``text_column``) and joined with
EOS, so the number measures what pretraining's validation loss measures, with the sliding
window of :mod:`llmkit.evaluation.perplexity` instead of disjoint blocks.

``method="rolling"`` instead scores each document on its own as lm-evaluation-harness's
``loglikelihood_rolling`` does, and adds its word_perplexity, byte_perplexity and
bits_per_byte (lm-eval's definitions), the numbers papers quote for wikitext.
"""

from __future__ import annotations

import math
import re
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
from llmkit.evaluation.perplexity import perplexity, rolling_loglikelihood, texts_to_stream
from llmkit.models.load import max_positions


@dataclass
class TextEvalResult:
    metrics: dict[str, float]
    num_examples: int
    num_tokens: int
    windows: int
    context_length: int
    stride: int | None
    seconds: float
    method: str = "strided"


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
    method: str = "strided",
) -> TextEvalResult:
    """Sliding-window perplexity of the documents joined by EOS (or lm-eval's rolling one).

    ``context_length`` defaults to the model's maximum positions, ``stride`` to half of it.
    """
    if context_length is None:
        context_length = max_positions(model.config)
        if context_length is None:
            raise LlmkitError(
                "the model's config gives no maximum length: set perplexity.context_length"
            )
    if method == "rolling":
        return _rolling(model, tokenizer, texts, context_length, batch_size, show_progress)
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


def _rolling(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int,
    batch_size: int,
    show_progress: bool,
) -> TextEvalResult:
    """lm-eval's loglikelihood_rolling per document, and its perplexities over words and bytes."""
    start = time.perf_counter()
    prefix = lm_eval_prefix_token(tokenizer)
    docs = [lm_eval_encode(tokenizer, text, prefix) for text in texts]
    lls = rolling_loglikelihood(
        model,
        docs,
        max_length=max_length,
        prefix_token=prefix,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    ll, tokens = sum(lls), sum(map(len, docs))
    if tokens == 0:
        raise DataError("the documents hold no tokens: rolling perplexity needs text")
    words, nbytes = sum(map(count_words, texts)), sum(len(t.encode("utf-8")) for t in texts)
    return TextEvalResult(
        metrics={
            "perplexity": math.exp(-ll / tokens),
            "mean_nll": -ll / tokens,
            "loglikelihood": ll,
            # lm-eval's weighted_perplexity over words and bytes, and its bits_per_byte
            "word_perplexity": math.exp(-ll / words),
            "byte_perplexity": math.exp(-ll / nbytes),
            "bits_per_byte": -ll / nbytes / math.log(2),
        },
        num_examples=len(texts),
        num_tokens=tokens,
        windows=sum(-(-len(d) // max_length) for d in docs),
        context_length=max_length,
        stride=None,
        seconds=time.perf_counter() - start,
        method="rolling",
    )


def count_words(text: str) -> int:
    """Words as lm-eval counts them for word_perplexity (``count_words``: split on whitespace)."""
    return len(re.split(r"\s+", text))


def lm_eval_prefix_token(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token lm-eval's HFLM puts before a document: BOS, else EOS."""
    if tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    if tokenizer.eos_token_id is None:
        raise LlmkitError("tokenizer has neither bos_token nor eos_token: set one for rolling")
    return tokenizer.eos_token_id


def lm_eval_encode(tokenizer: PreTrainedTokenizerBase, text: str, prefix: int) -> list[int]:
    """A document's tokens as HFLM.tok_encode makes them: the tokenizer's own special tokens,
    unless the text already starts with the prefix token's text."""
    if text.startswith(tokenizer.decode(prefix)):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)
