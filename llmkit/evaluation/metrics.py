"""Generation and classification metrics that reproduce their reference implementations.

Numbers computed here end up in papers, so every metric delegates to, or transcribes, the
implementation people compare against, and keeps that implementation's scale:

============== ========================================== =======
metric         reference implementation                   scale
============== ========================================== =======
bleu           ``sacrebleu.metrics.BLEU.corpus_score``    0-100
sentence_bleu  ``sacrebleu.metrics.BLEU.sentence_score``  0-100
chrf           ``sacrebleu.metrics.CHRF.corpus_score``    0-100
ter            ``sacrebleu.metrics.TER.corpus_score``     0-100
rouge          ``rouge_score.rouge_scorer.RougeScorer``   0-1
exact_match    official SQuAD v2.0 evaluation script      0-100
f1             official SQuAD v2.0 evaluation script      0-100
accuracy       ``sklearn.metrics.accuracy_score``         0-1
macro_f1       ``sklearn.metrics.f1_score(average=macro)`` 0-1
============== ========================================== =======

Nothing here touches the network (``evaluate.load`` would fetch scripts from the Hub).

References are given per prediction: ``references[i]`` is the list of gold strings for
``predictions[i]``; a plain ``list[str]`` means one gold string per prediction.
"""

from __future__ import annotations

import inspect
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmkit.errors import LlmkitError
from llmkit.registry import Registry

Result = dict[str, float | str]

__all__ = [
    "METRICS",
    "Metric",
    "Result",
    "bleu_from_statistics",
    "compute_metrics",
    "normalize_answer",
]


# --------------------------------------------------------------------------------------------
# Shared input checks
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    """Library messages can span lines (sacrebleu's install hints); LlmkitError must not."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _as_reference_lists(
    references: Sequence[Sequence[str]] | Sequence[str], metric: str
) -> list[list[str]]:
    """Accept ``list[list[str]]`` or ``list[str]`` (one gold each) and return the former."""
    out: list[list[str]] = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            out.append([refs])
            continue
        if not isinstance(refs, Sequence) or not all(isinstance(r, str) for r in refs):
            raise LlmkitError(
                f"{metric}: references[{i}] must be a string or a list of strings, "
                f"got {refs!r}; give one list of gold strings per prediction"
            )
        out.append(list(refs))
    return out


def _check_options(metric: str, options: dict[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise LlmkitError(
            f"{metric}: unknown option {unknown[0]!r}; valid options: {', '.join(sorted(allowed))}"
        )


class Metric:
    """A named metric. Subclasses implement ``_compute`` on already validated inputs."""

    name: str = ""
    needs_references: bool = True
    #: fewest / most gold strings allowed per prediction (None: no upper bound)
    min_references: int = 1
    max_references: int | None = None

    def compute(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]] | Sequence[str] | None = None,
        **options: Any,
    ) -> Result:
        """Validate inputs (one-line LlmkitError on misuse), then score."""
        preds, refs = self.prepare(predictions, references)
        self.check_options(options)
        return self._compute(preds, refs, **options)

    def check_options(self, options: dict[str, Any]) -> None:
        """Reject unknown options by name before any scoring starts."""
        params = list(inspect.signature(self._compute).parameters.values())[2:]
        allowed = [p.name for p in params if p.kind is not p.VAR_KEYWORD]
        _check_options(self.name, options, allowed)

    def prepare(
        self,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]] | Sequence[str] | None,
    ) -> tuple[list[str], list[list[str]] | None]:
        """Check types, lengths and reference counts; wrap plain string references."""
        if isinstance(predictions, str) or not isinstance(predictions, Sequence):
            raise LlmkitError(f"{self.name}: predictions must be a list of strings")
        if len(predictions) == 0:
            raise LlmkitError(f"{self.name}: no predictions to score; pass at least one")
        for i, p in enumerate(predictions):
            if not isinstance(p, str):
                raise LlmkitError(
                    f"{self.name}: predictions[{i}] is {type(p).__name__}, not a string; "
                    "decode generations to text before scoring"
                )
        if references is None:
            if self.needs_references:
                raise LlmkitError(
                    f"{self.name} needs references but none were given; "
                    "pass one list of gold strings per prediction"
                )
            return list(predictions), None
        if isinstance(references, str) or not isinstance(references, Sequence):
            raise LlmkitError(f"{self.name}: references must be a list, one entry per prediction")
        if len(references) != len(predictions):
            raise LlmkitError(
                f"{self.name}: {len(predictions)} predictions but {len(references)} references; "
                "give exactly one reference entry per prediction"
            )
        refs = _as_reference_lists(references, self.name)
        for i, r in enumerate(refs):
            if len(r) < self.min_references:
                raise LlmkitError(
                    f"{self.name}: references[{i}] is empty; give at least "
                    f"{self.min_references} reference string(s) per prediction"
                )
            if self.max_references is not None and len(r) > self.max_references:
                raise LlmkitError(
                    f"{self.name}: references[{i}] has {len(r)} entries; "
                    f"give at most {self.max_references} per prediction"
                )
        return list(predictions), refs

    def _compute(self, predictions: list[str], references: list[list[str]] | None, **options):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<metric {self.name}>"


METRICS: Registry[Metric] = Registry("metric")


# --------------------------------------------------------------------------------------------
# sacrebleu: BLEU, sentence BLEU, chrF, TER
# --------------------------------------------------------------------------------------------


def _reference_streams(references: list[list[str]]) -> list[list[str | None]]:
    """Transpose per-prediction references into sacrebleu's reference streams.

    sacrebleu wants ``streams[k][i]`` = k-th reference of prediction i. Predictions with fewer
    references are padded with ``None``, which sacrebleu drops per segment (``nrefs:var`` in the
    signature). Padding with ``""`` would instead add an empty reference and change the score.
    """
    width = max(len(r) for r in references)
    return [[r[k] if k < len(r) else None for r in references] for k in range(width)]


class _SacrebleuMetric(Metric):
    """Builds the sacrebleu metric object from options, turning its errors into LlmkitError."""

    def _sacrebleu_class(self) -> type:
        raise NotImplementedError

    def check_options(self, options: dict[str, Any]) -> None:
        """Options are the sacrebleu constructor's arguments; catch bad names and values early."""
        cls = self._sacrebleu_class()
        # ``references`` would pre-cache refs and bypass the ones passed to compute().
        params = inspect.signature(cls.__init__).parameters
        _check_options(self.name, options, [p for p in params if p not in {"self", "references"}])
        tokenizers = getattr(cls, "TOKENIZERS", None)
        tok = options.get("tokenize")
        if tokenizers is not None and tok is not None and tok not in tokenizers:
            raise LlmkitError(
                f"{self.name}: unknown tokenize {tok!r}; choose one of: {', '.join(tokenizers)}"
            )
        smooth = options.get("smooth_method")
        smooth_defaults = getattr(cls, "SMOOTH_DEFAULTS", None)
        if smooth_defaults is not None and smooth is not None and smooth not in smooth_defaults:
            raise LlmkitError(
                f"{self.name}: unknown smooth_method {smooth!r}; "
                f"choose one of: {', '.join(smooth_defaults)}"
            )

    def _build(self, options: dict[str, Any]):
        self.check_options(options)
        try:
            return self._sacrebleu_class()(**options)
        except (AssertionError, KeyError, ValueError, TypeError, RuntimeError, ImportError) as exc:
            raise LlmkitError(
                f"{self.name}: cannot use options {options}: {_one_line(exc)}"
            ) from exc


def _bleu_result(prefix: str, score: Any, signature: str | None) -> Result:
    """Flatten a sacrebleu ``BLEUScore``; counts/totals are the sufficient statistics."""
    out: Result = {
        prefix: score.score,
        f"{prefix}_bp": score.bp,
        f"{prefix}_sys_len": score.sys_len,
        f"{prefix}_ref_len": score.ref_len,
    }
    for n, (p, c, t) in enumerate(zip(score.precisions, score.counts, score.totals), start=1):
        out[f"{prefix}_precision_{n}"] = p
        out[f"{prefix}_counts_{n}"] = c
        out[f"{prefix}_totals_{n}"] = t
    if signature is not None:
        out[f"{prefix}_signature"] = signature
    return out


class BleuMetric(_SacrebleuMetric):
    """Corpus BLEU, identical to ``sacrebleu.metrics.BLEU(**options).corpus_score``.

    Options are BLEU's constructor arguments (``tokenize``, ``lowercase``, ``smooth_method``,
    ``smooth_value``, ``max_ngram_order``, ``effective_order``, ``force``, ``trg_lang``) with
    sacrebleu's defaults, so ``{}`` is ``sacrebleu.corpus_bleu``. Returns ``bleu`` (0-100),
    ``bleu_bp``, ``bleu_sys_len``, ``bleu_ref_len``, per order n ``bleu_precision_n`` (0-100),
    ``bleu_counts_n`` and ``bleu_totals_n`` exactly as sacrebleu reports them (with
    ``smooth_method='add-k'`` sacrebleu adds k to counts/totals for n > 1), and
    ``bleu_signature``, the string to quote next to the score.
    """

    name = "bleu"

    def _sacrebleu_class(self) -> type:
        from sacrebleu.metrics import BLEU

        return BLEU

    def _compute(self, predictions, references, **options) -> Result:
        metric = self._build(options)
        score = metric.corpus_score(predictions, _reference_streams(references))
        return _bleu_result("bleu", score, metric.get_signature().format())


class SentenceBleuMetric(_SacrebleuMetric):
    """Mean sentence BLEU: the average of ``sacrebleu.metrics.BLEU.sentence_score`` per example.

    Same options as ``bleu``, but ``effective_order`` defaults to True as in
    ``sacrebleu.sentence_bleu`` (without it most short sentences score 0). Returns
    ``sentence_bleu`` (0-100) and ``sentence_bleu_signature``. Not the same number as corpus
    BLEU: report it only where per-sentence scores are the point.
    """

    name = "sentence_bleu"

    def _sacrebleu_class(self) -> type:
        from sacrebleu.metrics import BLEU

        return BLEU

    def _compute(self, predictions, references, **options) -> Result:
        options = {"effective_order": True, **options}
        metric = self._build(options)
        scores = [metric.sentence_score(p, r).score for p, r in zip(predictions, references)]
        if len({len(r) for r in references}) > 1:
            metric.num_refs = -1  # sacrebleu's own marker for a variable count: "nrefs:var"
        return {
            "sentence_bleu": sum(scores) / len(scores),
            "sentence_bleu_signature": metric.get_signature().format(),
        }


class ChrfMetric(_SacrebleuMetric):
    """Corpus chrF/chrF++, identical to ``sacrebleu.metrics.CHRF(**options).corpus_score``.

    Options: ``char_order``, ``word_order`` (2 for chrF++), ``beta``, ``lowercase``,
    ``whitespace`` (True keeps spaces in character n-grams; sacrebleu < 2 called the inverse
    ``remove_whitespace``), ``eps_smoothing``. Returns ``chrf`` (0-100) and ``chrf_signature``.
    For one prediction this equals ``sacrebleu.sentence_chrf``.
    """

    name = "chrf"

    def _sacrebleu_class(self) -> type:
        from sacrebleu.metrics import CHRF

        return CHRF

    def _compute(self, predictions, references, **options) -> Result:
        metric = self._build(options)
        score = metric.corpus_score(predictions, _reference_streams(references))
        return {"chrf": score.score, "chrf_signature": metric.get_signature().format()}


class TerMetric(_SacrebleuMetric):
    """Corpus TER, identical to ``sacrebleu.metrics.TER(**options).corpus_score``.

    Options: ``normalized``, ``no_punct``, ``asian_support``, ``case_sensitive``. Returns
    ``ter`` (0-100, lower is better), ``ter_num_edits``, ``ter_ref_length`` and
    ``ter_signature``.
    """

    name = "ter"

    def _sacrebleu_class(self) -> type:
        from sacrebleu.metrics import TER

        return TER

    def _compute(self, predictions, references, **options) -> Result:
        metric = self._build(options)
        score = metric.corpus_score(predictions, _reference_streams(references))
        return {
            "ter": score.score,
            "ter_num_edits": score.num_edits,
            "ter_ref_length": score.ref_length,
            "ter_signature": metric.get_signature().format(),
        }


def bleu_from_statistics(
    correct: Sequence[int],
    total: Sequence[int],
    sys_len: int,
    ref_len: int,
    **options: Any,
) -> Result:
    """BLEU from summed sufficient statistics, identical to ``sacrebleu BLEU.compute_bleu``.

    Lets sharded evaluations add up ``bleu_counts_n``/``bleu_totals_n``/``bleu_sys_len``/
    ``bleu_ref_len`` and score once, which averaging per-shard BLEU cannot do. Options:
    ``smooth_method`` (default ``exp`` like ``bleu``), ``smooth_value``, ``effective_order``;
    the n-gram order is ``len(correct)``. Returns the ``bleu*`` keys without a signature:
    quote the signature of the runs that produced the statistics.
    """
    from sacrebleu.metrics import BLEU

    _check_options("bleu", options, ["smooth_method", "smooth_value", "effective_order"])
    if len(correct) != len(total) or not correct:
        raise LlmkitError(
            f"bleu: got {len(correct)} correct and {len(total)} total n-gram counts; "
            "give one of each per n-gram order"
        )
    smooth = options.get("smooth_method", "exp")
    if smooth not in BLEU.SMOOTH_DEFAULTS:
        raise LlmkitError(
            f"bleu: unknown smooth_method {smooth!r}; "
            f"choose one of: {', '.join(BLEU.SMOOTH_DEFAULTS)}"
        )
    score = BLEU.compute_bleu(
        correct=list(correct),  # copies: compute_bleu adds k in place for add-k smoothing
        total=list(total),
        sys_len=sys_len,
        ref_len=ref_len,
        smooth_method=smooth,
        smooth_value=options.get("smooth_value"),
        effective_order=options.get("effective_order", False),
        max_ngram_order=len(correct),
    )
    return _bleu_result("bleu", score, None)


# --------------------------------------------------------------------------------------------
# ROUGE (rouge-score)
# --------------------------------------------------------------------------------------------

_ROUGE_TYPE = re.compile(r"rouge[1-9]|rougeL|rougeLsum")
DEFAULT_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _rouge_types(value: Sequence[str] | str) -> list[str]:
    types = [value] if isinstance(value, str) else list(value)
    bad = [t for t in types if not isinstance(t, str) or not _ROUGE_TYPE.fullmatch(t)]
    if not types or bad:
        raise LlmkitError(
            f"rouge: invalid rouge_types {bad or types!r}; use rouge1..rouge9, rougeL or rougeLsum"
        )
    return types


class RougeMetric(Metric):
    """ROUGE via ``rouge_score.rouge_scorer.RougeScorer(...).score_multi(refs, prediction)``.

    Per example, each rouge type takes the reference with the highest F-measure (rouge-score's
    ``score_multi``); the corpus value is the plain mean over examples. That is
    ``evaluate``'s ``rouge`` with ``use_aggregator=False`` followed by a mean, not its default
    bootstrap aggregate, which resamples and so is not exactly reproducible. ``rougeLsum``
    splits sentences on newlines as rouge-score expects: put one sentence per line.
    Options: ``rouge_types`` (default rouge1, rouge2, rougeL, rougeLsum), ``use_stemmer``
    (Porter stemmer, default False), ``tokenizer`` (an object with ``tokenize(text)``; the
    default keeps lowercased ``[a-z0-9]`` runs only, so non-Latin text needs one).
    Returns, per type t, ``t`` (mean F-measure, 0-1), ``t_precision`` and ``t_recall``.
    """

    name = "rouge"

    def check_options(self, options: dict[str, Any]) -> None:
        super().check_options(options)
        if "rouge_types" in options:
            _rouge_types(options["rouge_types"])

    def _compute(
        self,
        predictions,
        references,
        rouge_types: Sequence[str] | str = DEFAULT_ROUGE_TYPES,
        use_stemmer: bool = False,
        tokenizer: Any = None,
    ) -> Result:
        from rouge_score import rouge_scorer

        types = _rouge_types(rouge_types)
        scorer = rouge_scorer.RougeScorer(types, use_stemmer=use_stemmer, tokenizer=tokenizer)
        sums = {t: [0.0, 0.0, 0.0] for t in types}
        for prediction, refs in zip(predictions, references):
            best = scorer.score_multi(refs, prediction)
            for t in types:
                sums[t][0] += best[t].fmeasure
                sums[t][1] += best[t].precision
                sums[t][2] += best[t].recall
        n = len(predictions)
        out: Result = {}
        for t in types:
            f, p, r = sums[t]
            out[t] = float(f / n)
            out[f"{t}_precision"] = float(p / n)
            out[f"{t}_recall"] = float(r / n)
        return out


# --------------------------------------------------------------------------------------------
# SQuAD exact match and F1 (official v2.0 script, transcribed)
# --------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (SQuAD official)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _answer_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def _exact(gold: str, pred: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(pred))


def _token_f1(gold: str, pred: str) -> float:
    gold_toks, pred_toks = _answer_tokens(gold), _answer_tokens(pred)
    if not gold_toks or not pred_toks:
        return int(gold_toks == pred_toks)  # no-answer: right only if both are empty
    num_same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _squad_golds(golds: list[str]) -> list[str]:
    """Golds that normalise to "" are dropped; none left means unanswerable (gold = "")."""
    kept = [a for a in golds if normalize_answer(a)]
    return kept or [""]


class _SquadMetric(Metric):
    min_references = 0  # an empty gold list is a SQuAD 2.0 unanswerable question

    def _score(self, gold: str, pred: str) -> float:
        raise NotImplementedError

    def _compute(self, predictions, references) -> Result:
        scores = [
            max(self._score(g, p) for g in _squad_golds(golds))
            for p, golds in zip(predictions, references)
        ]
        return {self.name: 100.0 * sum(scores) / len(scores)}


class ExactMatchMetric(_SquadMetric):
    """SQuAD exact match (0-100), as ``compute_exact`` in the official SQuAD v2.0 script.

    Max over gold answers after normalisation; an example whose golds are empty (or all
    normalise to empty) is unanswerable and counts iff the prediction normalises to empty.
    On answerable questions it equals the SQuAD v1.1 script. Returns ``exact_match``.
    """

    name = "exact_match"

    def _score(self, gold: str, pred: str) -> float:
        return _exact(gold, pred)


class SquadF1Metric(_SquadMetric):
    """SQuAD token F1 (0-100), as ``compute_f1`` in the official SQuAD v2.0 script.

    Bag-of-tokens F1 after normalisation, max over gold answers, same no-answer rule as
    ``exact_match``. Returns ``f1``.
    """

    name = "f1"

    def _score(self, gold: str, pred: str) -> float:
        return _token_f1(gold, pred)


# --------------------------------------------------------------------------------------------
# Classification labels
# --------------------------------------------------------------------------------------------


class AccuracyMetric(Metric):
    """Fraction of predictions equal to the gold label (0-1), as ``sklearn accuracy_score``.

    Labels are compared as exact strings: strip or map generations to labels first.
    Exactly one gold label per prediction. Returns ``accuracy``.
    """

    name = "accuracy"
    max_references = 1

    def _compute(self, predictions, references) -> Result:
        golds = [r[0] for r in references]
        return {"accuracy": sum(p == g for p, g in zip(predictions, golds)) / len(golds)}


class MacroF1Metric(Metric):
    """Unweighted mean of per-label F1 (0-1) over the labels that occur in the gold data.

    Equals ``sklearn.metrics.f1_score(gold, pred, labels=sorted(set(gold)), average="macro")``.
    The label set is the gold labels only, not sklearn's default union with predicted labels:
    a generative model can emit any string, and every distinct wrong string would otherwise
    add a zero-F1 class and make the score depend on how varied the mistakes are. Predictions
    outside the gold label set still count against recall of the true label. Exact strings,
    one gold label per prediction. Returns ``macro_f1``.
    """

    name = "macro_f1"
    max_references = 1

    def _compute(self, predictions, references) -> Result:
        golds = [r[0] for r in references]
        per_label = []
        for label in sorted(set(golds)):
            tp = sum(p == label and g == label for p, g in zip(predictions, golds))
            n_pred = sum(p == label for p in predictions)
            n_gold = sum(g == label for g in golds)
            # sklearn's F-score from counts: (1 + beta^2) tp / (beta^2 n_gold + n_pred)
            per_label.append(2 * tp / (n_gold + n_pred))
        # numpy mean (pairwise summation) as sklearn, so the last digit agrees too
        return {"macro_f1": float(np.mean(np.asarray(per_label, dtype=np.float64)))}


for _metric in (
    BleuMetric(),
    SentenceBleuMetric(),
    ChrfMetric(),
    TerMetric(),
    RougeMetric(),
    ExactMatchMetric(),
    SquadF1Metric(),
    AccuracyMetric(),
    MacroF1Metric(),
):
    METRICS.add(_metric.name, _metric)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def compute_metrics(
    names: Sequence[str],
    predictions: Sequence[str],
    references: Sequence[Sequence[str]] | Sequence[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> Result:
    """Score ``predictions`` with each named metric and merge the results into one dict.

    ``options`` is keyed by metric name, e.g. ``{"bleu": {"tokenize": "intl"}}``, because the
    same option name means different things to different metrics. All inputs are checked
    before any metric runs, so a bad call fails fast with a one-line LlmkitError.
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise LlmkitError(f"no metrics requested; choose from: {', '.join(METRICS.names())}")
    metrics = [METRICS.get(n) for n in dict.fromkeys(names)]
    options = dict(options or {})
    for key, value in options.items():
        if key not in {m.name for m in metrics}:
            raise LlmkitError(
                f"options given for {key!r}, which is not a requested metric "
                f"({', '.join(m.name for m in metrics)}); key options by metric name, "
                "e.g. {'bleu': {'tokenize': 'intl'}}"
            )
        if not isinstance(value, dict):
            raise LlmkitError(f"options[{key!r}] must be a dict of option names to values")
    prepared = [m.prepare(predictions, references) for m in metrics]
    for m in metrics:
        m.check_options(options.get(m.name, {}))
    merged: Result = {}
    for metric, (preds, refs) in zip(metrics, prepared):
        result = metric._compute(preds, refs, **options.get(metric.name, {}))
        clash = set(result) & set(merged)
        if clash:  # guards future metrics; current result names are disjoint
            raise LlmkitError(f"metric {metric.name} would overwrite result {sorted(clash)[0]!r}")
        merged.update(result)
    return merged


def scored_names(names: Sequence[str]) -> set[str]:
    """Numeric results the metrics produce (e.g. rouge -> rouge1, rougeL, ...), plus the loss:
    what ``metric_for_best_model`` may name."""
    values = compute_metrics(names, ["a"], [["a"]])
    return {k for k, v in values.items() if isinstance(v, float | int)} | {"loss"}
