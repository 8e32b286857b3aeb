"""Exact and near-duplicate removal; the first document of each duplicate cluster is kept.

Both steps stream. Exact dedup keeps one 16-byte hash per kept document. Near dedup keeps one
MinHash per kept document (``num_perm`` x 4 bytes) in a ``datasketch.MinHashLSH`` index, so
memory grows with the number of kept documents, not with their length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice

from datasketch import MinHash, MinHashLSH

from llmkit.config.steps import ExactDedupConfig, NearDedupConfig
from llmkit.data.documents import (
    Doc,
    StepReport,
    normalised_content,
    normalised_words,
    passthrough,
)


def content_hash(text: str) -> bytes:
    """blake2b of the normalised content: equal for copies that differ in case or spacing."""
    return hashlib.blake2b(normalised_content(text).encode("utf-8"), digest_size=16).digest()


def exact_dedup(docs: Iterable[Doc], config: ExactDedupConfig, report: StepReport) -> Iterator[Doc]:
    """Drop documents whose ``content_hash`` was seen before.

    Reason: ``exact_duplicate``. Details: ``clusters`` (kept id -> removed ids).
    """
    if not config.enabled:
        yield from passthrough(docs, report)
        return
    first: dict[bytes, str] = {}
    clusters: dict[str, list[str]] = report.details.setdefault("clusters", {})
    for doc in docs:
        report.docs_in += 1
        key = content_hash(doc.text)
        if key in first:
            clusters.setdefault(first[key], []).append(doc.id)
            report.remove(doc, "exact_duplicate")
            continue
        first[key] = doc.id
        report.docs_out += 1
        yield doc


def shingles(text: str, n: int) -> list[bytes]:
    """The set of word n-grams of the normalised text, as bytes for MinHash."""
    words = normalised_words(text)
    if len(words) <= n:
        return [" ".join(words).encode("utf-8")] if words else []
    return list({" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)})


def near_dedup(docs: Iterable[Doc], config: NearDedupConfig, report: StepReport) -> Iterator[Doc]:
    """Drop documents whose MinHash is within ``threshold`` Jaccard of an earlier kept document.

    LSH candidates are verified with the estimated Jaccard before removal (LSH also returns
    pairs below the threshold), and a removed document joins the most similar kept one.
    Only kept documents are indexed, so clusters do not chain (A~B, B~C does not drop C unless
    C~A). Documents without words are passed through (there is nothing to compare).
    Reason: ``near_duplicate``. Details: ``clusters`` (kept id -> removed ids),
    ``similarity`` (removed id -> estimated Jaccard with its kept document) and
    ``candidates_rejected`` (LSH candidates below the threshold, not removed).
    """
    if not config.enabled:
        yield from passthrough(docs, report)
        return
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    kept: list[tuple[str, MinHash]] = []
    clusters: dict[str, list[str]] = report.details.setdefault("clusters", {})
    similarity: dict[str, float] = report.details.setdefault("similarity", {})
    report.details.setdefault("candidates_rejected", 0)
    docs = iter(docs)
    while batch := list(islice(docs, config.batch_size)):
        sets = [shingles(doc.text, config.ngram) for doc in batch]
        hashes = MinHash.bulk(sets, num_perm=config.num_perm, seed=config.seed)
        for doc, shingle_set, mh in zip(batch, sets, hashes):
            report.docs_in += 1
            if shingle_set:
                best = _best_match(mh, lsh.query(mh), kept, config.threshold, report)
                if best is not None:
                    key, sim = best
                    clusters.setdefault(kept[key][0], []).append(doc.id)
                    similarity[doc.id] = round(sim, 4)
                    report.remove(doc, "near_duplicate")
                    continue
                lsh.insert(len(kept), mh, check_duplication=False)
                kept.append((doc.id, mh))
            report.docs_out += 1
            yield doc


def _best_match(
    mh: MinHash,
    candidates: list,
    kept: list[tuple[str, MinHash]],
    threshold: float,
    report: StepReport,
) -> tuple[int, float] | None:
    """The earliest most similar candidate at or above ``threshold``, with its similarity."""
    best: tuple[int, float] | None = None
    for key in sorted(candidates):
        sim = mh.jaccard(kept[key][1])
        if sim < threshold:
            report.details["candidates_rejected"] += 1
        elif best is None or sim > best[1]:
            best = (key, sim)
    return best
