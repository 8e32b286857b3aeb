"""The document steps chained lazily, in order, with one report per step.

read -> clean -> boilerplate -> exact_dedup -> near_dedup -> decontaminate -> split

Documents flow one at a time from the sources to ``(split, doc)`` pairs; each step fills its
:class:`StepReport` as the stream is consumed. Validation sources are read first, so when a
training document repeats a validation one it is the training copy that dedup removes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from llmkit.config import DataConfig
from llmkit.data.clean import boilerplate, clean, count_lines
from llmkit.data.decontaminate import EvalNgrams, decontaminate
from llmkit.data.dedup import exact_dedup, near_dedup
from llmkit.data.documents import Doc, StepReport, count_chars
from llmkit.data.read import eval_texts, read_dataset_rows, read_documents
from llmkit.data.sources import _cause, files_fingerprint, resolve_files
from llmkit.data.split import split_documents
from llmkit.errors import DataError

STEPS = ("read", "clean", "boilerplate", "exact_dedup", "near_dedup", "decontaminate", "split")
VALIDATION_SPLIT_NAMES = ("validation", "valid", "test")


@dataclass
class Sources:
    """The resolved inputs of a run; resolving checks that they exist but reads nothing."""

    train: list[Path] = field(default_factory=list)
    validation: list[Path] = field(default_factory=list)
    eval_files: list[Path] = field(default_factory=list)

    @classmethod
    def resolve(cls, data: DataConfig) -> Sources:
        if data.dataset_name:
            train = []
        elif data.train_files:
            train = resolve_files(data.train_files, "data.train_files")
        else:
            raise DataError("no data: set data.train_files (files, folders, globs)")
        return cls(
            train=train,
            validation=resolve_files(data.validation_files, "data.validation_files"),
            eval_files=resolve_files(
                data.decontaminate.eval_files, "data.decontaminate.eval_files"
            ),
        )

    def size_estimate(self) -> int:
        """Bytes of the local inputs (a Hub dataset counts as large)."""
        files = [*self.train, *self.validation]
        local = sum(x.stat().st_size for f in files for x in ([f] if f.is_file() else f.rglob("*")))
        return local if self.train else max(local, 1 << 40)

    def fingerprint(self, data: DataConfig) -> str:
        """Changes when a file changes (path, size, mtime) or the Hub dataset named changes."""
        hub = [data.dataset_name or "", data.dataset_config_name or ""]
        hub += [data.decontaminate.eval_dataset or "", data.decontaminate.eval_dataset_config or ""]
        return files_fingerprint([*self.train, *self.validation, *self.eval_files]) + ":".join(hub)


def new_reports() -> dict[str, StepReport]:
    return {name: StepReport(name) for name in STEPS}


def documents(
    sources: Sources,
    data: DataConfig,
    reports: dict[str, StepReport],
    count_tokens: Callable[[str], int] | None = None,
) -> Iterator[tuple[str, Doc]]:
    """Every kept document with the split it belongs to, through all steps of ``data``."""
    hub = _open_hub(data.dataset_name, data.dataset_config_name) if data.dataset_name else {}
    hub_validation = next((s for s in VALIDATION_SPLIT_NAMES if s in hub), None)
    fixed = {str(p): "validation" for p in sources.validation}
    if hub_validation:
        fixed[f"{data.dataset_name}/{hub_validation}"] = "validation"

    def cleaned(read: StepReport, cleaning: StepReport) -> Iterator[Doc]:
        stream = count_chars(_read(sources, data, hub, hub_validation, read), read, "out")
        if not data.clean.enabled:
            return stream
        return count_chars(clean(stream, data.clean, cleaning, count_tokens), cleaning, "out")

    line_counts = None
    if data.boilerplate.enabled:  # a first pass counts, for every line, the documents with it
        line_counts = count_lines(cleaned(StepReport("read"), StepReport("clean")))
    stream = cleaned(reports["read"], reports["clean"])
    steps = {
        "boilerplate": lambda s: boilerplate(
            s, data.boilerplate, reports["boilerplate"], line_counts
        ),
        "exact_dedup": lambda s: exact_dedup(s, data.exact_dedup, reports["exact_dedup"]),
        "near_dedup": lambda s: near_dedup(s, data.near_dedup, reports["near_dedup"]),
        "decontaminate": lambda s: _decontaminate(s, sources, data, reports["decontaminate"]),
    }
    ran = {"read", "split"} | ({"clean"} if data.clean.enabled else set())
    for name, step in steps.items():
        if getattr(data, name).enabled and (
            name != "decontaminate" or data.decontaminate.has_eval_sets
        ):
            stream = count_chars(step(stream), reports[name], "out")
            ran.add(name)
    split = data.split_config(hold_out_validation=not sources.validation and not hub_validation)
    for name, doc in split_documents(stream, split, reports["split"], fixed):
        reports["split"].chars_out += len(doc.text)
        yield name, doc
    _fill_in(reports, ran)


def _fill_in(reports: dict[str, StepReport], ran: set[str]) -> None:
    """Characters in = the previous step's out; a step that did not run passed everything on."""
    previous = None
    for name, report in reports.items():
        if previous is None:
            report.chars_in = report.chars_out
        else:
            if name not in ran:
                report.enabled = False
                report.docs_in = report.docs_out = previous.docs_out
                report.chars_out = previous.chars_out
            report.chars_in = previous.chars_out
        previous = report


def _read(
    sources: Sources,
    data: DataConfig,
    hub: dict[str, datasets.Dataset],
    hub_validation: str | None,
    report: StepReport,
) -> Iterator[Doc]:
    for path in sources.validation:
        yield from read_documents(path, data.text_column, report)
    if hub_validation:
        name = f"{data.dataset_name}/{hub_validation}"
        yield from read_dataset_rows(hub[hub_validation], data.text_column, name, report)
    if hub:
        if "train" not in hub:
            raise DataError(
                f"Hub dataset {data.dataset_name} has no train split (has {', '.join(hub)}); "
                "use data.train_files instead"
            )
        name = f"{data.dataset_name}/train"
        yield from read_dataset_rows(hub["train"], data.text_column, name, report)
    for path in sources.train:
        yield from read_documents(path, data.text_column, report)


def _decontaminate(
    stream: Iterator[Doc], sources: Sources, data: DataConfig, report: StepReport
) -> Iterator[Doc]:
    cfg = data.decontaminate
    hub = None
    if cfg.eval_dataset:
        splits = _open_hub(cfg.eval_dataset, cfg.eval_dataset_config)
        if cfg.eval_split not in splits:
            raise DataError(
                f"data.decontaminate.eval_dataset {cfg.eval_dataset} has no split "
                f"{cfg.eval_split!r} (has {', '.join(splits)}); set data.decontaminate.eval_split"
            )
        hub = splits[cfg.eval_split]
    index = EvalNgrams.build(eval_texts(sources.eval_files, cfg.eval_columns, hub), n=cfg.ngram)
    report.details["eval_sources"] = [str(p) for p in sources.eval_files] + (
        [f"{cfg.eval_dataset}/{cfg.eval_split}"] if hub is not None else []
    )
    return decontaminate(stream, index, cfg, report)


def _open_hub(name: str, config: str | None) -> dict[str, datasets.Dataset]:
    try:
        return dict(datasets.load_dataset(name, config))
    except Exception as e:  # offline, a typo, a gated dataset: all say the same to the user
        raise DataError(
            f"cannot load Hub dataset {name!r} ({_cause(e)}); check the name and configuration"
        ) from None
