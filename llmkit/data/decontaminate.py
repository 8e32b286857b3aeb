"""Remove training documents that share a word n-gram with evaluation texts.

The evaluation n-grams are built once into a set of 64-bit hashes (8 bytes each plus set
overhead, instead of the n-gram strings); training documents then stream past it. Words are
the normalised lowercase words of ``normalised_words`` (punctuation and layout ignored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from llmkit.config.steps import DecontaminateConfig
from llmkit.data.documents import Doc, StepReport, normalised_words, passthrough
from llmkit.errors import ConfigError


def _ngram_hash(words: list[str]) -> int:
    return int.from_bytes(
        hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8).digest(), "big"
    )


@dataclass
class EvalNgrams:
    """The hashed n-grams of the evaluation texts; build once with ``EvalNgrams.build``."""

    n: int
    hashes: set[int]
    texts: int = 0
    too_short: int = 0  # evaluation texts with fewer than n words: they can match nothing

    @classmethod
    def build(cls, eval_texts: Iterable[str], n: int = 13) -> EvalNgrams:
        index = cls(n=n, hashes=set())
        for text in eval_texts:
            words = normalised_words(text)
            index.texts += 1
            if len(words) < n:
                index.too_short += 1
            index.hashes.update(_ngram_hash(words[i : i + n]) for i in range(len(words) - n + 1))
        return index

    def first_match(self, text: str) -> str | None:
        """The first n-gram of ``text`` found in the evaluation texts, or None."""
        words = normalised_words(text)
        for i in range(len(words) - self.n + 1):
            if _ngram_hash(words[i : i + self.n]) in self.hashes:
                return " ".join(words[i : i + self.n])
        return None


def decontaminate(
    docs: Iterable[Doc], eval_ngrams: EvalNgrams, config: DecontaminateConfig, report: StepReport
) -> Iterator[Doc]:
    """Drop documents sharing any ``config.ngram``-word n-gram with the evaluation texts.

    Reason: ``eval_overlap``. Details: ``matches`` (removed id -> one shared n-gram),
    ``eval_texts`` and ``eval_texts_too_short`` (shorter than n words, so never matched).
    """
    if not config.enabled:
        yield from passthrough(docs, report)
        return
    if eval_ngrams.n != config.ngram:
        raise ConfigError(
            f"decontaminate.ngram is {config.ngram} but the evaluation n-grams were built with "
            f"n={eval_ngrams.n}: build them with EvalNgrams.build(texts, n={config.ngram})"
        )
    report.details["eval_texts"] = eval_ngrams.texts
    report.details["eval_texts_too_short"] = eval_ngrams.too_short
    matches: dict[str, str] = report.details.setdefault("matches", {})
    for doc in docs:
        report.docs_in += 1
        match = eval_ngrams.first_match(doc.text) if eval_ngrams.hashes else None
        if match is not None:
            matches[doc.id] = match
            report.remove(doc, "eval_overlap")
            continue
        report.docs_out += 1
        yield doc
