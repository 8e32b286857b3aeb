"""Text cleaning: Unicode, control characters, whitespace, length filters and boilerplate lines.

``clean`` streams one document at a time. ``boilerplate`` needs to know, for every line, how
many documents contain it: it holds the corpus in memory, unless you pass ``line_counts`` from
a first counting pass (``count_lines``) over a source you can read twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from llmkit.config.steps import BoilerplateConfig, CleanConfig
from llmkit.data.documents import Doc, StepReport, passthrough
from llmkit.errors import ConfigError

REPLACEMENT_CHAR = "\ufffd"
_UTF8_REPLACEMENT = REPLACEMENT_CHAR.encode("utf-8")
# Line breaks of other conventions (CR, CRLF, VT, FF, NEL, U+2028/9) become \n first ...
_NEWLINES = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
# ... then every remaining C0/C1 control except \t (0x09) and \n (0x0A) is dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_INNER_SPACES = re.compile(r"(?<=\S)(?: [ \t]+|\t[ \t]*)(?=\S)")
_TRAILING_SPACES = re.compile(r"[^\S\n]+$", re.MULTILINE)


def decode_bytes(raw: bytes, source: str, report: StepReport | None = None) -> tuple[str, int]:
    """Decode UTF-8 without ever raising: invalid sequences become U+FFFD and are counted.

    Returns the text and the number of invalid byte sequences. A leading BOM is dropped. If
    ``report`` is given, the count is added to ``report.details["invalid_utf8"][source]``.
    U+FFFD that was genuinely in the input (bytes EF BF BD) is not counted as invalid.
    """
    text = raw.decode("utf-8-sig", errors="replace")
    invalid = text.count(REPLACEMENT_CHAR) - raw.count(_UTF8_REPLACEMENT)
    if report is not None and invalid:
        per_source = report.details.setdefault("invalid_utf8", {})
        per_source[source] = per_source.get(source, 0) + invalid
    return text, invalid


def clean_text(text: str, config: CleanConfig, counts: Counter[str] | None = None) -> str:
    """Apply the character-level normalisations of ``config`` to one text.

    Removals run before NFC so that a mark separated from its base letter by junk still
    composes with it. ``counts`` (if given) receives the number of characters removed per kind.
    """
    counts = Counter() if counts is None else counts
    if config.remove_control_chars:
        text = _NEWLINES.sub("\n", text)
        text, n = _CONTROL.subn("", text)
        counts["control_chars_removed"] += n
    if config.remove_replacement_chars:
        n = text.count(REPLACEMENT_CHAR)
        if n:
            text = text.replace(REPLACEMENT_CHAR, "")
            counts["replacement_chars_removed"] += n
    if config.unicode_nfc:
        text = unicodedata.normalize("NFC", text)
    if config.normalise_whitespace:
        text = normalise_whitespace(text, config.max_blank_lines)
    return text


def normalise_whitespace(text: str, max_blank_lines: int = 1) -> str:
    """Collapse space/tab runs between words to one space, strip line ends and outer blank lines.

    Leading indentation is kept (code and verse use it); runs of more than ``max_blank_lines``
    blank lines are shortened to that many.
    """
    text = _TRAILING_SPACES.sub("", text)
    text = _INNER_SPACES.sub(" ", text)
    text = re.sub(f"\n{{{max_blank_lines + 2},}}", "\n" * (max_blank_lines + 1), text)
    return text.strip("\n")


def clean(
    docs: Iterable[Doc],
    config: CleanConfig,
    report: StepReport,
    count_tokens: Callable[[str], int] | None = None,
) -> Iterator[Doc]:
    """Normalise each document's text and drop empty, too-short and too-long documents.

    Reasons: ``empty``, ``too_short_chars``, ``too_long_chars``, ``too_short_tokens``,
    ``too_long_tokens``. Details: ``docs_changed`` and characters removed per kind.
    ``count_tokens`` is any callable text -> token count, e.g.
    ``lambda t: len(tokenizer(t).input_ids)``; tokens are only counted when a token limit is set.
    """
    if not config.enabled:
        yield from passthrough(docs, report)
        return
    wants_tokens = config.min_tokens > 0 or config.max_tokens is not None
    if wants_tokens and count_tokens is None:
        raise ConfigError(
            "clean.min_tokens/clean.max_tokens need a tokenizer: pass count_tokens, "
            "or set them to 0/None and use min_chars/max_chars"
        )
    counts = report.details.setdefault("counts", Counter())
    for doc in docs:
        report.docs_in += 1
        text = clean_text(doc.text, config, counts)
        if text != doc.text:
            counts["docs_changed"] += 1
        reason = _length_reason(text, config, count_tokens if wants_tokens else None)
        if reason:
            report.remove(doc, reason)
            continue
        report.docs_out += 1
        yield doc if text == doc.text else replace(doc, text=text)


def _length_reason(
    text: str, config: CleanConfig, count_tokens: Callable[[str], int] | None
) -> str | None:
    if not text.strip():
        return "empty"
    if len(text) < config.min_chars:
        return "too_short_chars"
    if config.max_chars is not None and len(text) > config.max_chars:
        return "too_long_chars"
    if count_tokens is not None:
        n = count_tokens(text)
        if n < config.min_tokens:
            return "too_short_tokens"
        if config.max_tokens is not None and n > config.max_tokens:
            return "too_long_tokens"
    return None


def count_lines(docs: Iterable[Doc]) -> Counter[str]:
    """For each distinct non-blank line (stripped), the number of documents containing it."""
    counts: Counter[str] = Counter()
    for doc in docs:
        counts.update({line.strip() for line in doc.text.split("\n")} - {""})
    return counts


def boilerplate(
    docs: Iterable[Doc],
    config: BoilerplateConfig,
    report: StepReport,
    line_counts: Counter[str] | None = None,
) -> Iterator[Doc]:
    """Remove lines found in at least ``config.min_docs`` documents; drop documents left empty.

    Without ``line_counts`` this reads ``docs`` into a list first (two passes). Pass counts
    from ``count_lines`` over the same (already cleaned) documents to stream instead.
    Reason: ``only_boilerplate``. Details: ``lines`` (removed line -> document count, the most
    frequent ``max_listed``), ``lines_removed``, ``docs_changed``.
    """
    if not config.enabled:
        yield from passthrough(docs, report)
        return
    if line_counts is None:
        docs = list(docs)
        line_counts = count_lines(docs)
    repeated = {line for line, n in line_counts.items() if n >= config.min_docs}
    report.details["lines"] = {
        line: line_counts[line]
        for line in sorted(repeated, key=lambda x: (-line_counts[x], x))[: config.max_listed]
    }
    stats = report.details.setdefault("counts", Counter())
    for doc in docs:
        report.docs_in += 1
        lines = doc.text.split("\n")
        kept = [line for line in lines if line.strip() not in repeated]
        if len(kept) == len(lines):
            report.docs_out += 1
            yield doc
            continue
        stats["lines_removed"] += len(lines) - len(kept)
        stats["docs_changed"] += 1
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")
        if not text.strip():
            report.remove(doc, "only_boilerplate")
            continue
        report.docs_out += 1
        yield replace(doc, text=text)
