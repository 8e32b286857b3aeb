"""Stream documents out of raw sources, one at a time, never holding a whole file in memory.

A ``.txt`` file gives one document per blank-line-separated paragraph, a ``.jsonl`` file one
per line, tabular files and datasets one per row. Invalid UTF-8 never crashes a run: each
invalid sequence becomes U+FFFD (which ``clean`` removes) and is counted per file in the read
report; a file where more than 1% of the bytes are invalid (or NUL) is not UTF-8 text at all,
and that is an error naming the file and how to convert it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets

from llmkit.data.clean import decode_bytes
from llmkit.data.documents import Doc, StepReport
from llmkit.data.sources import _cause, is_saved_dataset, json_record, load_saved
from llmkit.errors import DataError

BLOCK_BYTES = 1 << 22  # read size for text files
MAX_DOC_CHARS = 1 << 24  # a "paragraph" longer than this is cut at a line break
INVALID_LIMIT = 0.01  # fraction of invalid or NUL bytes above which a file is not UTF-8 text
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")


class Utf8Check:
    """Decodes one file's bytes with ``decode_bytes`` (invalid sequences become U+FFFD and are
    counted in the report) and raises when the file turns out not to be UTF-8 text at all."""

    def __init__(self, path: Path, report: StepReport):
        self.path, self.report = path, report
        self.invalid = self.nul = self.bytes = 0

    def decode(self, raw: bytes) -> str:
        text, invalid = decode_bytes(raw, str(self.path), self.report)
        self.invalid += invalid
        self.nul += raw.count(0)
        self.bytes += len(raw)
        if self.bytes >= 1 << 16:
            self.check()
        return text

    def check(self) -> None:
        if self.invalid + self.nul > INVALID_LIMIT * max(self.bytes, 1):
            what = f"{self.invalid:,} invalid UTF-8 sequences" if self.invalid else "NUL bytes"
            raise DataError(
                f"data file {self.path}: not UTF-8 text ({what} in {self.bytes:,} bytes); "
                f"convert it first, e.g. `iconv -f latin1 -t utf-8 {self.path} > fixed.txt` "
                "(or -f utf-16 for UTF-16 files)"
            )


def read_documents(path: Path, text_column: str, report: StepReport) -> Iterator[Doc]:
    """Documents of one file or saved dataset; ``report`` counts records, blanks and bad bytes.

    Ids are ``file:line`` for text and JSON lines files and ``file[row]`` for tabular ones.
    """
    if path.is_dir():
        rows = _saved_rows(path, text_column)
    elif path.suffix == ".txt":
        rows = _text_paragraphs(path, report)
    elif path.suffix == ".jsonl":
        rows = _json_lines(path, text_column, report)
    else:
        rows = _table_rows(path, text_column)
    yield from _documents(rows, str(path), report)


def read_dataset_rows(
    ds: datasets.Dataset, column: str, name: str, report: StepReport
) -> Iterator[Doc]:
    """Documents of one split of a Hub dataset (or any ``datasets.Dataset``)."""
    yield from _documents(_dataset_rows(ds, column, name), name, report)


def _documents(
    rows: Iterable[tuple[str, str | None]], source: str, report: StepReport
) -> Iterator[Doc]:
    for doc_id, text in rows:
        report.docs_in += 1
        if text is None or not text.strip():
            report.remove(Doc(doc_id, "", source), "blank")
            continue
        report.docs_out += 1
        yield Doc(doc_id, text, source)


def _text_paragraphs(path: Path, report: StepReport) -> Iterator[tuple[str, str]]:
    """Paragraphs with the line they start on, read in blocks cut at line ends."""
    check = Utf8Check(path, report)
    pending = b""  # bytes after the last line end of the previous block
    carry, line = "", 1  # carry: the unfinished paragraph; line: where carry starts
    with path.open("rb") as fh:
        while True:
            raw = fh.read(BLOCK_BYTES)
            data = pending + raw
            cut = data.rfind(b"\n") + 1 if raw else len(data)
            if raw and cut == 0 and len(data) > 4 * MAX_DOC_CHARS:
                cut = len(data)  # no line end at all for a long time
            block, pending = data[:cut], data[cut:]
            buffer, pos = carry + check.decode(block), 0
            for m in _PARAGRAPH_BREAK.finditer(buffer):
                yield from _paragraph(path, buffer[pos : m.start()], line)
                line += buffer.count("\n", pos, m.end())
                pos = m.end()
            carry = buffer[pos:]
            if len(carry) > MAX_DOC_CHARS:  # no blank line for a long time: cut at a line end
                cut_at = carry.rfind("\n", 0, MAX_DOC_CHARS) + 1 or MAX_DOC_CHARS
                yield from _paragraph(path, carry[:cut_at], line)
                line += carry.count("\n", 0, cut_at)
                carry = carry[cut_at:]
            if not raw:
                break
    check.check()
    yield from _paragraph(path, carry, line)


def _paragraph(path: Path, text: str, line: int) -> Iterator[tuple[str, str]]:
    # Leading blank lines belong to the break before: start the id at the first text line.
    stripped = text.lstrip("\n")
    line += len(text) - len(stripped)
    text = stripped.rstrip("\n")
    if text.strip():
        yield f"{path}:{line}", text


def _json_lines(path: Path, column: str, report: StepReport) -> Iterator[tuple[str, str | None]]:
    check = Utf8Check(path, report)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            text = check.decode(raw)
            if not text.strip():
                continue
            record = json_record(text, path, lineno, column)
            yield f"{path}:{lineno}", _text_value(record[column], f"{path} line {lineno}", column)
    check.check()


def _table_rows(path: Path, column: str) -> Iterator[tuple[str, str | None]]:
    builder = {".json": "json", ".csv": "csv", ".parquet": "parquet"}[path.suffix]
    try:
        ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except Exception as e:  # datasets wraps parser errors in many types
        raise DataError(
            f"data file {path}: cannot be read ({_cause(e)}); check its format"
        ) from None
    yield from _dataset_rows(ds, column, f"data file {path}")


def _saved_rows(path: Path, column: str) -> Iterator[tuple[str, str | None]]:
    if not is_saved_dataset(path):
        raise DataError(f"{path} is a folder but not a save_to_disk dataset; list its files")
    yield from _dataset_rows(load_saved(path), column, f"dataset {path}")


def _dataset_rows(ds: datasets.Dataset, column: str, name: str) -> Iterator[tuple[str, str | None]]:
    if column not in ds.column_names:
        raise DataError(
            f"{name}: no column {column!r} (columns: {', '.join(ds.column_names)}); "
            "set data.text_column"
        )
    prefix = name.removeprefix("data file ").removeprefix("dataset ")
    row = 0
    for batch in ds.select_columns([column]).iter(batch_size=1000):
        for value in batch[column]:
            yield f"{prefix}[{row}]", _text_value(value, f"{name} row {row}", column)
            row += 1


def _text_value(value: Any, where: str, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise DataError(
        f"{where}: column {column!r} holds {type(value).__name__}, not text; "
        "set data.text_column to a text column"
    )


def eval_texts(
    files: list[Path], columns: list[str], hub: datasets.Dataset | None = None
) -> Iterator[str]:
    """One text per evaluation record: its string fields (``columns``, or all) joined.

    Nested fields count too (SQuAD's ``answers.text``), so any task file can be protected.
    """
    scratch = StepReport("eval")
    for path in files:
        if path.suffix == ".txt":
            yield from (text for _, text in _text_paragraphs(path, scratch))
            continue
        if path.suffix == ".jsonl":
            records = _json_records(path)
        else:
            ds = datasets.load_from_disk(str(path)) if path.is_dir() else None
            if isinstance(ds, datasets.DatasetDict):
                ds = datasets.concatenate_datasets(list(ds.values()))
            if ds is None:
                builder = {".json": "json", ".csv": "csv", ".parquet": "parquet"}[path.suffix]
                try:
                    ds = datasets.load_dataset(builder, data_files=str(path), split="train")
                except Exception as e:
                    raise DataError(
                        f"evaluation file {path}: cannot be read ({_cause(e)}); check its format"
                    ) from None
            records = ((f"row {i}", r) for i, r in enumerate(ds))
        for where, record in records:
            yield _record_text(record, columns, f"evaluation file {path} {where}")
    if hub is not None:
        for i, record in enumerate(hub):
            yield _record_text(record, columns, f"evaluation dataset row {i}")


def _json_records(path: Path) -> Iterator[tuple[str, dict]]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="replace")
            record = json_record(text, path, lineno, None, label="evaluation file")
            yield f"line {lineno}", record


def _record_text(record: dict, columns: list[str], where: str) -> str:
    missing = [c for c in columns if c not in record]
    if missing:
        raise DataError(
            f"{where}: no column {missing[0]!r} (has {', '.join(record) or 'none'}); "
            "fix data.decontaminate.eval_columns"
        )
    values = [record[c] for c in columns] if columns else list(record.values())
    return "\n".join(_strings(values))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
