"""The metric layer must reproduce the reference implementations' own test vectors.

Every case in ``shared/data/metric_vectors`` (transcribed from sacrebleu's and rouge-score's
test suites) is scored through ``llmkit.evaluation.metrics``, never through the libraries
directly, so a wrapping mistake (reference transposition, option plumbing, averaging) fails
here. SQuAD and classification metrics are checked against hand computations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmkit.errors import LlmkitError
from llmkit.evaluation.metrics import (
    METRICS,
    bleu_from_statistics,
    compute_metrics,
    normalize_answer,
)

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "data" / "metric_vectors"
SACREBLEU = json.loads((VECTORS / "sacrebleu_vectors.json").read_text())
ROUGE = json.loads((VECTORS / "rouge_vectors.json").read_text())

# raw_corpus_bleu(hyps, refs, smooth_value) in sacrebleu's compat API, spelled as options
RAW_BLEU = {"tokenize": "none", "smooth_method": "floor", "force": True, "effective_order": True}
# chrF test cases in sacrebleu's test_chrf.py use these settings
CHRF_TEST = {"char_order": 6, "word_order": 0, "beta": 3}


def per_prediction(streams: list[list[str]]) -> list[list[str]]:
    """sacrebleu reference streams (refs[k][i]) -> llmkit's one list per prediction."""
    return [list(refs) for refs in zip(*streams)]


def single_stream(refs: list[str]) -> list[list[str]]:
    return [[r] for r in refs]


def close(actual: float, expected: float, tol: float) -> None:
    assert abs(actual - expected) <= tol, f"{actual!r} != {expected!r} (tolerance {tol})"


# ---- one checker per vector group: (file, variable) -> check(group, case) -------------------


def check_raw_bleu(group: dict, case: dict) -> None:
    opts = {"bleu": {**RAW_BLEU, "smooth_value": 0.01}}
    result = compute_metrics(["bleu"], case["hyps"], per_prediction(case["refs"]), opts)
    close(result["bleu"] / 100, case["expected_bleu_fraction"], group["tolerance"])


def check_corpus_bleu(group: dict, case: dict) -> None:
    opts = {"bleu": case["kwargs"]}
    result = compute_metrics(["bleu"], case["hyps"], per_prediction(case["refs"]), opts)
    close(result["bleu"], case["expected_bleu"], group["tolerance"])
    assert result["bleu_signature"].startswith("nrefs:2|")


def check_bleu_offset(group: dict, case: dict) -> None:
    refs = per_prediction(case["refs"])
    for value, key in [(0.1, "expected_with_offset"), (0.0, "expected_without_offset")]:
        opts = {"bleu": {**RAW_BLEU, "smooth_value": value}}
        result = compute_metrics(["bleu"], case["hyps"], refs, opts)
        close(result["bleu"] / 100, case[key], group["tolerance"])


def check_bleu_statistics(group: dict, case: dict) -> None:
    opts = {"bleu": {**RAW_BLEU, "smooth_value": 0.01}}
    result = compute_metrics(["bleu"], case["hyps"], per_prediction(case["refs"]), opts)
    counts = [result[f"bleu_counts_{n}"] for n in range(1, 5)]
    totals = [result[f"bleu_totals_{n}"] for n in range(1, 5)]
    assert counts == case["expected_stats"]["common"]
    assert totals == case["expected_stats"]["total"]


def check_bleu_scoring(group: dict, case: dict) -> None:
    stats, sys_len, ref_len = case["stats_sys_len_ref_len"]
    # BLEU.compute_bleu's own default is smooth_method="none"
    result = bleu_from_statistics(
        stats["common"], stats["total"], sys_len, ref_len, smooth_method="none"
    )
    close(result["bleu"] / 100, case["expected_bleu_fraction"], group["tolerance"])


def check_bleu_degenerate(group: dict, case: dict) -> None:
    stats, sys_len, ref_len = case["stats_sys_len_ref_len"]
    result = bleu_from_statistics(
        stats["common"],
        stats["total"],
        sys_len,
        ref_len,
        smooth_method="floor",
        smooth_value=case["offset"],
    )
    close(result["bleu"] / 100, case["expected_bleu_fraction"], group["tolerance"])


def check_bleu_max_order(group: dict, case: dict) -> None:
    opts = {"bleu": {"max_ngram_order": case["max_ngram_order"]}}
    result = compute_metrics(["bleu"], case["hyps"], per_prediction(case["refs"]), opts)
    assert f"{result['bleu']:.2f}" == case["expected_bleu_2dp"]
    assert f"bleu_precision_{case['max_ngram_order']}" in result


def check_sentence_chrf(group: dict, case: dict) -> None:
    # one prediction scored as a corpus == sacrebleu.sentence_chrf
    opts = {"chrf": {"eps_smoothing": True}}
    result = compute_metrics(["chrf"], [case["hyp"]], [case["refs"]], opts)
    close(result["chrf"], case["expected_chrf"], group["tolerance"])


def chrf_checker(extra: dict[str, Any]) -> Callable[[dict, dict], None]:
    def check(group: dict, case: dict) -> None:
        refs = single_stream(case["refs_single_stream"])
        result = compute_metrics(["chrf"], case["hyps"], refs, {"chrf": {**CHRF_TEST, **extra}})
        close(result["chrf"], case["expected_chrf"], group["tolerance"])

    return check


def check_sentence_bleu(group: dict, case: dict) -> None:
    opts = {
        "sentence_bleu": {
            "smooth_method": case["smooth_method"],
            "smooth_value": case["smooth_value"],
            "lowercase": case["lowercase"],
            "tokenize": case["tokenize"],
        }
    }
    result = compute_metrics(["sentence_bleu"], [group["hyp"]], [[group["ref"]]], opts)
    close(result["sentence_bleu"], case["expected_bleu"], group["tolerance"])


def check_ter(group: dict, case: dict) -> None:
    result = compute_metrics(["ter"], case["hyps"], single_stream(case["refs_single_stream"]))
    # the tolerance is on the 0-1 scale of expected_ter_fraction
    close(result["ter"] / 100, case["expected_ter_fraction"], group["tolerance"])


CHECKERS: dict[tuple[str, str], Callable[[dict, dict], None]] = {
    ("test/test_bleu.py", "test_raw_bleu_cases"): check_raw_bleu,
    ("test/test_bleu.py", "test_corpus_bleu_cases"): check_corpus_bleu,
    ("test/test_bleu.py", "test_case_effective_order"): check_raw_bleu,
    ("test/test_bleu.py", "test_case_offset"): check_bleu_offset,
    ("test/test_bleu.py", "test_case_statistics"): check_bleu_statistics,
    ("test/test_bleu.py", "test_case_scoring"): check_bleu_scoring,
    ("test/test_bleu.py", "test_case_degenerate_stats"): check_bleu_degenerate,
    ("test/test_bleu.py", "test_bleu_max_order"): check_bleu_max_order,
    ("test/test_chrf.py", "test_sentence_level_chrf"): check_sentence_chrf,
    ("test/test_chrf.py", "test_cases"): chrf_checker({"eps_smoothing": True}),
    ("test/test_chrf.py", "test_cases_effective_order"): chrf_checker({"eps_smoothing": False}),
    # sacrebleu < 2 spelled this remove_whitespace=False; sacrebleu 2 calls it whitespace=True
    ("test/test_chrf.py", "test_cases_keep_whitespace"): chrf_checker({"whitespace": True}),
    ("test/test_sentence_bleu.py", "test_cases"): check_sentence_bleu,
    ("test/test_sentence_bleu.py", "test_cases_zero_bleu"): check_sentence_bleu,
    ("test/test_ter.py", "test_cases"): check_ter,
}

SACREBLEU_CASES = [
    pytest.param(
        group,
        case,
        id=f"sacrebleu:{Path(group['file']).stem}:{group['variable']}:{i}",
    )
    for group in SACREBLEU["groups"]
    for i, case in enumerate(group["cases"])
]


def test_every_sacrebleu_group_has_a_checker() -> None:
    groups = {(g["file"], g["variable"]) for g in SACREBLEU["groups"]}
    assert groups == set(CHECKERS)
    assert len(SACREBLEU_CASES) == SACREBLEU["source"]["total_cases"]


@pytest.mark.parametrize(("group", "case"), SACREBLEU_CASES)
def test_sacrebleu_vector(group: dict, case: dict) -> None:
    CHECKERS[group["file"], group["variable"]](group, case)


# ---- rouge-score vectors -------------------------------------------------------------------

# testRougeLsum has no assert_places: its note says p/r at 7 places and F at 3
PLACES_OVERRIDE = {"testRougeLsum": {"precision": 7, "recall": 7, "fmeasure": 3}}

ROUGE_CASES = [
    pytest.param(case, id=f"rouge:{i}:{case['test'].replace(' ', '_')}")
    for i, case in enumerate(ROUGE["cases"])
]


@pytest.mark.parametrize("case", ROUGE_CASES)
def test_rouge_vector(case: dict) -> None:
    opts = {"rouge": {"rouge_types": case["rouge_types"], "use_stemmer": case["use_stemmer"]}}
    result = compute_metrics(["rouge"], [case["prediction"]], [[case["target"]]], opts)
    if "assert_places" in case:
        places = dict.fromkeys(("precision", "recall", "fmeasure"), case["assert_places"])
    else:
        places = PLACES_OVERRIDE[case["test"]]
    for rouge_type, expected in case["expected"].items():
        got = {
            "fmeasure": result[rouge_type],
            "precision": result[f"{rouge_type}_precision"],
            "recall": result[f"{rouge_type}_recall"],
        }
        for field, value in expected.items():
            # unittest's assertAlmostEqual(first, second, places)
            assert round(abs(got[field] - value), places[field]) == 0, (rouge_type, field)


# ---- multi-reference handling ---------------------------------------------------------------

HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REFS_VAR = [
    ["The dog bit the man.", "The dog had bit the man."],
    ["It was not unexpected."],
    ["The man bit him first.", "The man had bitten the dog."],
]


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter", "sentence_bleu"])
def test_variable_reference_counts(name: str) -> None:
    """Padding a missing reference must not count as an extra one: repeating a reference
    changes neither BLEU's n-gram maxima and length choice, nor chrF's/TER's best match."""
    var = compute_metrics([name], HYPS, REFS_VAR)
    repeated = [refs + refs[-1:] * (2 - len(refs)) for refs in REFS_VAR]
    full = compute_metrics([name], HYPS, repeated)
    assert var[name] == full[name]
    assert var[f"{name}_signature"].startswith("nrefs:var|")
    assert full[f"{name}_signature"].startswith("nrefs:2|")


def test_plain_string_references_are_one_reference_each() -> None:
    refs = [r[0] for r in REFS_VAR]
    names = ["bleu", "chrf", "rouge"]
    assert compute_metrics(names, HYPS, refs) == compute_metrics(names, HYPS, single_stream(refs))


def test_rouge_takes_best_reference_and_averages_examples() -> None:
    preds = ["testing one two", "testing"]
    one = compute_metrics(["rouge"], preds[:1], [["testing one two"]])
    two = compute_metrics(["rouge"], preds[1:], [["testing one two"]])
    assert one["rouge1"] == 1.0 and two["rouge1"] == 0.5
    both = compute_metrics(["rouge"], preds, [["nothing shared", "testing one two"]] * 2)
    assert both["rouge1"] == pytest.approx(0.75, abs=1e-15)
    assert both["rouge1_recall"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-15)


def test_bleu_statistics_roundtrip() -> None:
    """Summed sufficient statistics rescore to the corpus BLEU they came from."""
    result = compute_metrics(["bleu"], HYPS, REFS_VAR)
    again = bleu_from_statistics(
        [result[f"bleu_counts_{n}"] for n in range(1, 5)],
        [result[f"bleu_totals_{n}"] for n in range(1, 5)],
        result["bleu_sys_len"],
        result["bleu_ref_len"],
    )
    assert again["bleu"] == result["bleu"]


# ---- SQuAD exact match / F1 against a hand computation ---------------------------------------


def test_squad_normalisation() -> None:
    assert normalize_answer("  The  Eiffel-Tower!  ") == "eiffeltower"
    assert normalize_answer("An apple, a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_squad_exact_match_and_f1() -> None:
    predictions = ["The Eiffel Tower!", "in Paris France", "", "an answer", "a", "Paris"]
    references = [
        ["Eiffel Tower"],  # EM 1, F1 1
        ["Paris", "Paris, France"],  # multi-gold: F1 max(0.5, 0.8) = 0.8, EM 0
        [],  # unanswerable, empty prediction: EM 1, F1 1
        [""],  # unanswerable, non-empty prediction: 0, 0
        ["the"],  # gold normalises to empty -> unanswerable; "a" also empty: 1, 1
        ["Lyon"],  # 0, 0
    ]
    # F1 on example 2 by hand: pred tokens {in, paris, france}
    #   vs "paris":        p = 1/3, r = 1   -> 2pr/(p+r) = 0.5
    #   vs "paris france": p = 2/3, r = 1   -> 0.8
    result = compute_metrics(["exact_match", "f1"], predictions, references)
    assert result["exact_match"] == pytest.approx(100 * 3 / 6, rel=1e-12)
    assert result["f1"] == pytest.approx(100 * (1 + 0.8 + 1 + 0 + 1 + 0) / 6, rel=1e-12)


# ---- classification against a hand computation ----------------------------------------------


def test_accuracy_and_macro_f1() -> None:
    gold = ["a", "a", "b", "c", "c", "c"]
    pred = ["a", "b", "b", "c", "a", "x"]
    result = compute_metrics(["accuracy", "macro_f1"], pred, gold)
    assert result["accuracy"] == 0.5
    # per gold label, F1 = 2tp / (2tp + fp + fn):
    #   a: tp 1, fp 1, fn 1 -> 1/2;  b: tp 1, fp 1, fn 0 -> 2/3;  c: tp 1, fp 0, fn 2 -> 1/2
    # "x" is never gold, so it is not a class (sklearn's default would add a 0 and give 5/12)
    assert result["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3, rel=1e-12)


# ---- errors: one line, naming what is wrong --------------------------------------------------


def raises_one_line(call: Callable[[], Any], *fragments: str) -> None:
    with pytest.raises(LlmkitError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_unknown_metric_lists_known_ones() -> None:
    raises_one_line(
        lambda: compute_metrics(["bleu", "blue"], ["a"], [["a"]]), "'blue'", *METRICS.names()
    )


def test_length_mismatch() -> None:
    raises_one_line(lambda: compute_metrics(["chrf"], ["a", "b"], [["a"]]), "2 predictions", "1")


def test_missing_references() -> None:
    raises_one_line(lambda: compute_metrics(["rouge"], ["a"], None), "rouge", "references")
    raises_one_line(lambda: compute_metrics(["bleu"], ["a", "b"], [["a"], []]), "references[1]")
    raises_one_line(lambda: compute_metrics(["accuracy"], ["a"], [["a", "b"]]), "at most 1")


def test_bad_options() -> None:
    raises_one_line(
        lambda: compute_metrics(["bleu"], ["a"], [["a"]], {"bleu": {"tokenizer": "13a"}}),
        "'tokenizer'",
        "tokenize",
    )
    raises_one_line(
        lambda: compute_metrics(["bleu"], ["a"], [["a"]], {"bleu": {"tokenize": "nope"}}),
        "'nope'",
        "13a",
    )
    raises_one_line(
        lambda: compute_metrics(["bleu"], ["a"], [["a"]], {"tokenize": "13a"}),
        "'tokenize'",
        "metric name",
    )
    raises_one_line(
        lambda: compute_metrics(["rouge"], ["a"], [["a"]], {"rouge": {"rouge_types": ["rougeX"]}}),
        "rougeX",
    )
    raises_one_line(
        lambda: compute_metrics(["f1"], ["a"], [["a"]], {"f1": {"average": "macro"}}), "'average'"
    )
