"""Document-level data steps on real text (tiny Shakespeare paragraphs) and crafted inputs."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from datasketch import MinHash

from llmkit.data.clean import (
    BoilerplateConfig,
    CleanConfig,
    boilerplate,
    clean,
    count_lines,
    decode_bytes,
)
from llmkit.data.decontaminate import DecontaminateConfig, EvalNgrams, decontaminate
from llmkit.data.dedup import (
    ExactDedupConfig,
    NearDedupConfig,
    exact_dedup,
    near_dedup,
    shingles,
)
from llmkit.data.documents import Doc, StepReport, format_reports, normalised_words, paragraphs
from llmkit.data.split import SplitConfig, assign_split, split_documents
from llmkit.errors import ConfigError, DataError

SHAKESPEARE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "tinyshakespeare.txt"
)


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return paragraphs(SHAKESPEARE.read_text(encoding="utf-8"), "shk")


def check_counts(report: StepReport) -> None:
    assert report.docs_in == report.docs_out + report.docs_removed, report


def run_dedup(docs: list[Doc]) -> tuple[set[str], StepReport, StepReport]:
    exact, near = StepReport("exact_dedup"), StepReport("near_dedup")
    config = NearDedupConfig(threshold=0.8, num_perm=128, ngram=5)
    kept = near_dedup(exact_dedup(docs, ExactDedupConfig(), exact), config, near)
    removed = {d.id for d in docs} - {d.id for d in kept}
    check_counts(exact)
    check_counts(near)
    return removed, exact, near


def word_jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(text: str) -> set[tuple[str, ...]]:
        w = normalised_words(text)
        return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}

    ga, gb = grams(a), grams(b)
    return len(ga & gb) / len(ga | gb)


def replace_word(text: str, index: int, new: str) -> str:
    words = text.split(" ")
    words[index] = new
    return " ".join(words)


def test_paragraphs_split_at_blank_lines(docs):
    assert 7000 < len(docs) < 7500
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.text.strip() and "\n\n" not in d.text for d in docs)


# --- dedup ---------------------------------------------------------------------------------


def test_dedup_finds_exactly_the_planted_duplicates(docs):
    baseline, _, base_near = run_dedup(docs)
    in_clusters = set(baseline) | set(base_near.details["clusters"])
    long_docs = [
        i
        for i, d in enumerate(docs)
        if len(d.text.split(" ")) >= 150 and d.id not in in_clusters and i < len(docs) - 1000
    ]
    assert len(long_docs) >= 10
    ex = [docs[i] for i in long_docs[0:3]]
    nr = [docs[i] for i in long_docs[3:6]]
    far = docs[long_docs[6]]

    plants = {
        "exact-0": ex[0].text,
        "exact-1": ex[1].text.upper(),  # normalisation ignores case ...
        "exact-2": "  " + ex[2].text.replace(" ", "   ").replace("\n", " \n\n"),  # ... and layout
        "near-0": replace_word(nr[0].text, 40, "zounds"),
        "near-1": replace_word(replace_word(nr[1].text, 30, "marry"), 31, "quoth"),
        "near-2": replace_word(replace_word(nr[2].text, 20, "alack"), 100, "forsooth"),
    }
    originals = dict(zip(plants, [*ex, *nr]))
    for key in ("near-0", "near-1", "near-2"):
        assert 0.85 <= word_jaccard(originals[key].text, plants[key]) < 1.0
    # A copy with every third word changed is not a near duplicate and must be kept.
    far_words = far.text.split(" ")
    far_copy = " ".join(w if i % 3 else "nonny" for i, w in enumerate(far_words))
    assert word_jaccard(far.text, far_copy) < 0.3

    corpus = list(docs)
    # Plant each copy well after its original, at known positions, last position first.
    placements = [(long_docs[k] + 500 + 7 * k, key) for k, key in enumerate(plants)]
    placements.append((long_docs[6] + 500, "far"))
    texts = {**plants, "far": far_copy}
    for pos, key in sorted(placements, reverse=True):
        corpus.insert(pos, Doc(f"plant:{key}", texts[key], "planted"))

    removed, exact, near = run_dedup(corpus)
    assert removed - baseline == {f"plant:{k}" for k in plants}
    assert baseline <= removed
    assert set(exact_ids(exact)) - baseline == {f"plant:exact-{i}" for i in range(3)}
    assert set(exact_ids(near)) - baseline == {f"plant:near-{i}" for i in range(3)}
    for key, original in originals.items():
        report = exact if key.startswith("exact") else near
        assert f"plant:{key}" in report.details["clusters"][original.id]
    for key in ("near-0", "near-1", "near-2"):
        assert 0.8 <= near.details["similarity"][f"plant:{key}"] < 1.0


def exact_ids(report: StepReport) -> list[str]:
    return [i for ids in report.details["clusters"].values() for i in ids]


def test_near_dedup_verifies_lsh_candidates(docs):
    """LSH also returns pairs below the threshold; only verified ones may be removed."""
    originals = [d for d in docs if len(d.text.split(" ")) >= 150][:60]
    variants = [
        Doc(
            f"{d.id}-v",
            " ".join("nonny" if i % 25 == 12 else w for i, w in enumerate(d.text.split(" "))),
            "v",
        )
        for d in originals
    ]
    config = NearDedupConfig(threshold=0.8)
    hashes = MinHash.bulk([shingles(d.text, 5) for d in originals + variants], num_perm=128, seed=1)
    estimated = {
        v.id: hashes[i].jaccard(hashes[i + len(originals)]) for i, v in enumerate(variants)
    }
    assert min(estimated.values()) > 0.55 and max(estimated.values()) < 0.9
    report = StepReport("near_dedup")
    kept = {d.id for d in near_dedup(originals + variants, config, report)}
    assert {v.id for v in variants} - kept == {k for k, e in estimated.items() if e >= 0.8}
    assert report.details["candidates_rejected"] > 0


def test_dedup_disabled_passes_everything_through(docs):
    report = StepReport("near_dedup")
    out = list(near_dedup(docs[:500], NearDedupConfig(enabled=False), report))
    assert out == docs[:500] and not report.enabled and report.docs_out == 500
    with pytest.raises(ConfigError, match="near_dedup.threshold"):
        NearDedupConfig(threshold=1.5)


# --- split ---------------------------------------------------------------------------------


def test_split_is_stable_when_documents_are_appended(docs):
    config = SplitConfig(validation=0.1, test=0.05, seed=3)
    first = docs[:5000]
    before = {d.id: s for s, d in split_documents(first, config, StepReport("split"))}
    report = StepReport("split")
    after = {d.id: s for s, d in split_documents(docs, config, report)}
    assert all(after[i] == s for i, s in before.items())
    n = len(docs)
    sizes = report.details["sizes"]
    assert sum(sizes.values()) == n == report.docs_out
    assert abs(sizes["validation"] / n - 0.1) < 0.015
    assert abs(sizes["test"] / n - 0.05) < 0.01
    # Copies of one text share a split, so a duplicate can never straddle train/validation.
    by_text: dict[str, set[str]] = {}
    for d in docs:
        by_text.setdefault(d.text.lower(), set()).add(after[d.id])
    assert all(len(s) == 1 for s in by_text.values())
    other_seed = SplitConfig(validation=0.1, test=0.05, seed=4)
    assert sum(assign_split(d, other_seed) != after[d.id] for d in docs) > 500


def test_split_counts_are_exact_and_resolved_fractions_keep_it_stable(docs):
    config = SplitConfig(validation_docs=300, test_docs=100, key="id")
    first = docs[:5000]
    report = StepReport("split")
    before = {d.id: s for s, d in split_documents(first, config, report)}
    assert Counter(before.values()) == {"train": 4600, "validation": 300, "test": 100}
    # Counts re-resolved on a grown corpus move the cutoffs; the saved fractions do not.
    fractions = report.details["fractions"]
    pinned = SplitConfig(key="id", **fractions)
    after = {d.id: s for s, d in split_documents(docs, pinned, StepReport("split"))}
    assert all(after[i] == s for i, s in before.items())
    with pytest.raises(DataError, match="split.validation_docs"):
        list(split_documents(docs[:10], config, StepReport("split")))
    with pytest.raises(ConfigError, match="split.validation"):
        SplitConfig(validation=0.7, test=0.5)


# --- decontamination -----------------------------------------------------------------------


def test_decontamination_removes_exactly_the_13_gram_overlaps(docs):
    n = 13
    words = [normalised_words(d.text) for d in docs]
    seen: Counter[tuple[str, ...]] = Counter()
    for w in words:
        seen.update({tuple(w[i : i + n]) for i in range(len(w) - n + 1)})
    # Paragraphs whose 13-word window at 5..18 occurs nowhere else in the corpus.
    unique = [i for i, w in enumerate(words) if len(w) >= 40 and seen[tuple(w[5 : 5 + n])] == 1]
    hit, near_miss = unique[:300:100], unique[1:300:100]
    windows = {docs[i].id: " ".join(words[i][5 : 5 + n]) for i in hit}

    eval_texts = ["Question: who said that? Answer: nobody.", "too short"]
    for k, i in enumerate(hit):
        window = " ".join(words[i][5 : 5 + n])
        text = f"Quiz {k}. Complete the quote: {window} -- which play?"
        eval_texts.append(text.upper() if k == 0 else text)  # case does not matter
    for i in near_miss:
        # Only 12 words shared, wrapped in words that appear nowhere in Shakespeare.
        eval_texts.append(f"xylophone {' '.join(words[i][5 : 5 + n - 1])} xylophone quasar")

    index = EvalNgrams.build(eval_texts, n=n)
    report = StepReport("decontaminate")
    kept = list(decontaminate(docs, index, DecontaminateConfig(ngram=n), report))
    check_counts(report)
    assert {d.id for d in docs} - {d.id for d in kept} == set(windows)
    assert report.details["matches"] == windows
    assert report.details["eval_texts_too_short"] == 2
    assert report.removed == {"eval_overlap": len(hit)}
    with pytest.raises(ConfigError, match="decontaminate.ngram"):
        list(decontaminate(docs, index, DecontaminateConfig(ngram=8), StepReport("d")))


# --- cleaning ------------------------------------------------------------------------------


def test_clean_nfc_makes_composed_and_decomposed_equal():
    composed, decomposed = Doc("a", "caf\u00e9 au lait", "t"), Doc("b", "cafe\u0301 au lait", "t")
    assert composed.text != decomposed.text
    out = list(clean([composed, decomposed], CleanConfig(), StepReport("clean")))
    assert out[0].text == out[1].text == "caf\u00e9 au lait"
    raw = list(clean([decomposed], CleanConfig(unicode_nfc=False), StepReport("clean")))
    assert raw[0].text == decomposed.text


def test_clean_control_chars_and_whitespace():
    doc = Doc("c", "a\x00b\x07c\td\r\ne\x1bf\x7f\x9bg\ufeff", "t")
    keep_layout = CleanConfig(normalise_whitespace=False)
    report = StepReport("clean")
    assert next(clean([doc], keep_layout, report)).text == "abc\td\nefg\ufeff"
    assert report.details["counts"]["control_chars_removed"] == 5

    messy = "  indented  line \t\n\n\n\n\nnext\t\tline   \r\n\n\nend \x0cpage two  "
    out = next(clean([Doc("w", messy, "t")], CleanConfig(), StepReport("clean"))).text
    assert out == "  indented line\n\nnext line\n\nend\npage two"
    out2 = next(clean([Doc("w", messy, "t")], CleanConfig(max_blank_lines=2), StepReport("c")))
    assert out2.text == "  indented line\n\n\nnext line\n\n\nend\npage two"


def test_decode_bytes_counts_invalid_sequences_without_crashing():
    raw = (
        b"\xef\xbb\xbfHello "  # BOM, dropped
        + b"\xff\xfe"  # two invalid start bytes
        + " w\u00f6rld ".encode()
        + b"\xe2\x82"  # truncated 3-byte sequence
        + b" end \xef\xbf\xbd "  # a genuine U+FFFD: not an invalid byte
        + "\u00e9".encode()[:1]  # truncated at the very end
    )
    report = StepReport("clean")
    text, invalid = decode_bytes(raw, "crafted.txt", report)
    assert invalid == 4 and report.details["invalid_utf8"] == {"crafted.txt": 4}
    assert text.count("\ufffd") == 5 and text.startswith("Hello ")
    cleaned = next(clean([Doc("x", text, "crafted.txt")], CleanConfig(), report)).text
    assert cleaned == "Hello w\u00f6rld end"
    assert report.details["counts"]["replacement_chars_removed"] == 5
    assert decode_bytes(b"", "empty") == ("", 0)


def test_decode_bytes_on_corrupted_shakespeare():
    raw = bytearray(SHAKESPEARE.read_bytes())
    positions = range(1000, len(raw), 1000)
    for i in positions:
        raw[i] = 0xFF
    text, invalid = decode_bytes(bytes(raw), "shk-corrupt")
    assert invalid == len(positions)
    report = StepReport("clean")
    out = list(clean(paragraphs(text, "shk"), CleanConfig(), report))
    assert report.details["counts"]["replacement_chars_removed"] == invalid
    assert not any("\ufffd" in d.text for d in out)


def test_clean_length_filters(docs):
    config = CleanConfig(min_chars=40, max_chars=1000, min_tokens=3, max_tokens=150)
    report = StepReport("clean")
    out = list(clean(docs, config, report, count_tokens=lambda t: len(t.split())))
    check_counts(report)
    assert all(40 <= len(d.text) <= 1000 and 3 <= len(d.text.split()) <= 150 for d in out)
    expected: Counter[str] = Counter()
    for d in clean(docs, CleanConfig(), StepReport("clean")):
        text, words = d.text, len(d.text.split())
        if len(text) < 40:
            expected["too_short_chars"] += 1
        elif len(text) > 1000:
            expected["too_long_chars"] += 1
        elif words < 3:
            expected["too_short_tokens"] += 1
        elif words > 150:
            expected["too_long_tokens"] += 1
    assert report.removed == expected and all(v > 0 for v in expected.values())
    blank = Doc("blank", " \x00 \n\t\n", "t")
    empty_report = StepReport("clean")
    assert list(clean([blank], CleanConfig(), empty_report)) == []
    assert empty_report.removed == {"empty": 1}
    with pytest.raises(ConfigError, match="count_tokens"):
        list(clean(docs, CleanConfig(max_tokens=10), StepReport("clean")))


def test_boilerplate_lines_removed_from_every_document():
    header, footer = "Home | About | Contact", "Subscribe to our newsletter!"
    bodies = [f"Article {i} says something different about topic {i}." for i in range(5)]
    docs = [Doc(f"p{i}", f"{header}\n{b}\n\n{footer}", "web") for i, b in enumerate(bodies)]
    docs.append(Doc("only", f"{header}\n\n{footer}", "web"))
    docs += [
        Doc("two-a", "A shared line\nfirst", "web"),
        Doc("two-b", "A shared line\nsecond", "web"),
    ]
    report = StepReport("boilerplate")
    out = {
        d.id: d.text for d in boilerplate(docs, BoilerplateConfig(enabled=True, min_docs=3), report)
    }
    check_counts(report)
    assert report.removed == {"only_boilerplate": 1}
    assert [out[f"p{i}"] for i in range(5)] == bodies
    assert out["two-a"] == "A shared line\nfirst"  # in only 2 documents: kept
    assert report.details["lines"] == {header: 6, footer: 6}
    off = list(boilerplate(docs, BoilerplateConfig(), StepReport("boilerplate")))
    assert off == docs


def test_boilerplate_on_shakespeare_matches_line_counts(docs):
    config = BoilerplateConfig(enabled=True, min_docs=100)
    counts = count_lines(docs)
    frequent = {line for line, n in counts.items() if n >= 100}
    assert 5 < len(frequent) < 50  # speaker names such as "GLOUCESTER:"
    in_memory = list(boilerplate(docs, config, StepReport("boilerplate")))
    streamed = list(boilerplate(iter(docs), config, StepReport("b"), line_counts=counts))
    assert in_memory == streamed
    remaining = count_lines(in_memory)
    assert not frequent & set(remaining)
    assert all(remaining[line] == counts[line] for line in remaining)


def test_pipeline_report_table(docs):
    reports = [StepReport(n) for n in ("clean", "boilerplate", "exact_dedup", "near_dedup")]
    stream = clean(docs[:3000], CleanConfig(min_chars=20), reports[0])
    stream = boilerplate(stream, BoilerplateConfig(), reports[1])
    stream = exact_dedup(stream, ExactDedupConfig(), reports[2])
    stream = near_dedup(stream, NearDedupConfig(), reports[3])
    out = list(stream)
    for prev, nxt in zip(reports, reports[1:]):
        assert prev.docs_out == nxt.docs_in
    assert reports[-1].docs_out == len(out)
    table = format_reports(reports)
    assert "boilerplate (off)" in table and "exact_duplicate=" in table
    assert len(table.splitlines()) == 5


def test_steps_are_deterministic(docs):
    sample = random.Random(0).sample(docs, 2000)
    a = [d.id for d in near_dedup(sample, NearDedupConfig(), StepReport("n"))]
    b = [d.id for d in near_dedup(sample, NearDedupConfig(), StepReport("n"))]
    assert a == b
