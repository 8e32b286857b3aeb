"""Deterministic train/validation/test split by document.

Each document gets a number in [0, 1) from a seeded blake2b hash of its normalised content (or
its id); ``[0, test)`` is test, ``[test, test + validation)`` is validation, the rest train.
A document's split depends only on itself, the seed and the fractions, so appending documents
never moves existing ones, and copies of one text (same normalised content) share a split.

Sizes given as counts (``validation_docs``, ``test_docs``) are NOT stable by themselves: they
are turned into fractions (hash cutoffs) on the corpus as it is now, which needs the whole
corpus in memory. On a grown corpus the same counts give lower cutoffs, and some documents
move from validation/test into train. To keep existing documents in place, read the resolved
fractions from ``report.details["fractions"]`` and use them as ``validation``/``test`` next time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from llmkit.config.steps import SplitConfig
from llmkit.data.documents import Doc, StepReport, normalised_content
from llmkit.errors import DataError

SPLITS = ("train", "validation", "test")


def split_point(doc: Doc, config: SplitConfig) -> float:
    """The document's position in [0, 1): a seeded hash of its normalised content or id."""
    data = normalised_content(doc.text) if config.key == "text" else doc.id
    digest = hashlib.blake2b(
        data.encode("utf-8"), digest_size=8, key=str(config.seed).encode("utf-8")
    ).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_split(doc: Doc, config: SplitConfig) -> str:
    """``train``, ``validation`` or ``test`` from the fractions of ``config`` (counts ignored)."""
    if not config.enabled or config.test + config.validation == 0:
        return "train"
    u = split_point(doc, config)
    if u < config.test:
        return "test"
    if u < config.test + config.validation:
        return "validation"
    return "train"


def resolve_counts(docs: list[Doc], config: SplitConfig) -> SplitConfig:
    """Turn ``validation_docs``/``test_docs`` into fractions that give those counts on ``docs``.

    Cutoffs fall midway between neighbouring hash values, so the counts are exact unless
    documents tie (copies of one text share a value: deduplicate first).
    """
    points = sorted(split_point(d, config) for d in docs)
    n = len(points)
    wanted = (config.test_docs or 0) + (config.validation_docs or 0)
    if wanted > n:
        raise DataError(
            f"split.validation_docs + split.test_docs = {wanted} but the corpus has only {n} "
            "documents: lower the counts"
        )

    def cutoff(start: float, count: int | None, fraction: float) -> float:
        if count is None:
            return min(start + fraction, 1.0)
        i = sum(p < start for p in points) + count  # first document above the cutoff
        if count == 0:
            return start
        return 1.0 if i >= n else (points[i - 1] + points[i]) / 2

    test_end = cutoff(0.0, config.test_docs, config.test)
    validation_end = cutoff(test_end, config.validation_docs, config.validation)
    return replace(
        config,
        test=test_end,
        validation=validation_end - test_end,
        test_docs=None,
        validation_docs=None,
    )


def split_documents(
    docs: Iterable[Doc],
    config: SplitConfig,
    report: StepReport,
    fixed: Mapping[str, str] | None = None,
) -> Iterator[tuple[str, Doc]]:
    """Yield ``(split, doc)`` for every document; nothing is removed.

    Streams when sizes are fractions; with counts, reads all documents first (see the module
    docstring on stability). ``fixed`` maps a document's ``source`` to the split it must go to
    (validation files, a Hub dataset's own validation split); those documents take no part in
    the hash split. Details: ``sizes`` (documents per split) and ``fractions`` (the fractions
    used: reuse them to keep the split stable).
    """
    report.enabled = config.enabled
    fixed = fixed or {}
    if config.enabled and config.uses_counts:
        docs = list(docs)
        config = resolve_counts([d for d in docs if d.source not in fixed], config)
    report.details["fractions"] = {"validation": config.validation, "test": config.test}
    sizes: Counter[str] = report.details.setdefault("sizes", Counter())
    for doc in docs:
        report.docs_in += 1
        name = fixed.get(doc.source) or assign_split(doc, config)
        sizes[name] += 1
        report.docs_out += 1
        yield name, doc
