"""The shape shared by the document-level data steps: a document and a step report.

Each step (``clean``, ``boilerplate``, ``exact_dedup``, ``near_dedup``, ``decontaminate``) is a
generator ``step(docs, config, report) -> Iterator[Doc]`` (``decontaminate`` also takes the
evaluation n-grams) that streams kept documents and fills ``report`` as it is consumed, so a
pipeline can chain them lazily and print one table (``format_reports``) at the end.
``split_documents`` comes last and labels documents instead of removing them.

A sensible order: clean -> boilerplate -> exact_dedup -> near_dedup -> decontaminate -> split
(cheap filters first, so the expensive ones see fewer documents; dedup and decontamination
compare cleaned text).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"\w+")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")


@dataclass(frozen=True, slots=True)
class Doc:
    """One document; ``id`` must be unique within a run so reports can name it."""

    id: str
    text: str
    source: str = ""


@dataclass
class StepReport:
    """What one step saw, kept and removed (by reason), filled while its generator is consumed.

    ``docs_in == docs_out + sum(removed.values())`` once the step's output is exhausted.
    ``details`` holds step-specific results, documented by each step (e.g. ``clusters``).
    """

    name: str
    enabled: bool = True
    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0  # filled by the caller that chains the steps (see ``count_chars``)
    chars_out: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    max_examples: int = 5

    def remove(self, doc: Doc, reason: str) -> None:
        """Count one removed document under ``reason`` and keep its id if examples are few."""
        self.removed[reason] += 1
        ids = self.examples.setdefault(reason, [])
        if len(ids) < self.max_examples:
            ids.append(doc.id)

    @property
    def docs_removed(self) -> int:
        return sum(self.removed.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counters become plain dicts."""
        return {
            "name": self.name,
            "enabled": self.enabled,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "removed": dict(self.removed.most_common()),
            "examples": self.examples,
            "details": _plain(self.details),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StepReport:
        """The inverse of ``to_dict`` (as read back from a saved report)."""
        return cls(**{**d, "removed": Counter(d.get("removed", {}))})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):  # Counter included
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def count_chars(docs: Iterable[Doc], report: StepReport, side: str) -> Iterator[Doc]:
    """Pass documents through, adding their characters to ``report.chars_in``/``chars_out``."""
    attr = f"chars_{side}"
    total = getattr(report, attr)
    try:
        for doc in docs:
            total += len(doc.text)
            yield doc
    finally:
        setattr(report, attr, total)


def passthrough(docs: Iterable[Doc], report: StepReport) -> Iterator[Doc]:
    """What a disabled step does: count documents through unchanged, so the table still adds up."""
    report.enabled = False
    for doc in docs:
        report.docs_in += 1
        report.docs_out += 1
        yield doc


def format_reports(reports: Iterable[StepReport]) -> str:
    """A plain-text table: one row per step with documents (and characters) in, out, removed
    and the reasons. Character columns appear when a caller counted them (``count_chars``)."""
    reports = list(reports)
    chars = any(r.chars_in or r.chars_out for r in reports)
    header = ("step", "in", "out", "removed", *(("chars in", "chars out") if chars else ()))
    rows = [(*header, "reasons")]
    for r in reports:
        reasons = ", ".join(f"{k}={v}" for k, v in r.removed.most_common())
        rows.append(
            (
                r.name if r.enabled else f"{r.name} (off)",
                f"{r.docs_in:,}",
                f"{r.docs_out:,}",
                f"{r.docs_removed:,}",
                *((f"{r.chars_in:,}", f"{r.chars_out:,}") if chars else ()),
                reasons,
            )
        )
    return format_table(rows)


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Columns aligned: the first left, the middle ones right, the last left and unpadded."""
    n = len(rows[0])
    widths = [max(len(row[i]) for row in rows) for i in range(n - 1)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:-1], widths[1:])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def normalised_words(text: str) -> list[str]:
    """Lowercase words without punctuation: what near-dedup and decontamination compare."""
    return _WORD.findall(text.lower())


def normalised_content(text: str) -> str:
    """Lowercase text, whitespace runs collapsed: equal for copies that differ only in layout."""
    return " ".join(text.lower().split())


def paragraphs(text: str, source: str) -> list[Doc]:
    """Split ``text`` into one document per blank-line-separated paragraph, ids ``source:N``."""
    parts = (p.strip("\n") for p in _PARAGRAPH_BREAK.split(text))
    return [Doc(f"{source}:{i}", p, source) for i, p in enumerate(p for p in parts if p.strip())]
