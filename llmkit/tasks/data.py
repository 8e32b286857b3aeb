"""Task records from local files (json, jsonl, csv, parquet, SQuAD JSON) or a Hub dataset.

Every record goes through ``task.normalize``, so a missing column or a bad value fails with
one line naming the file and line (or row) before any model is loaded. A folder holding
``train``/``validation``/``test`` files gives each split its own files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import datasets

from llmkit.config.finetune import TaskDataConfig
from llmkit.data.sources import (
    is_hub_name,
    is_saved_dataset,
    load_files,
    load_saved,
    parse_json_line,
    resolve_files,
    saved_splits,
    split_files,
    split_named,
    split_of,
)
from llmkit.errors import DataError
from llmkit.tasks.base import Task


@dataclass
class TaskSplits:
    train: list[dict]
    validation: list[dict]
    test: list[dict]
    validation_source: str  # where the validation split came from, for the report


def load_task_records(
    task: Task, sources: list[str], split: str, *, dataset_config: str | None = None
) -> list[dict]:
    """Normalized records of one split; an empty split is an error."""
    records: list[dict] = []
    for source in sources:
        if is_hub_name(source):
            records += _hub_records(task, source, dataset_config, split)
        elif is_saved_dataset(Path(source)):
            records += _saved_records(task, Path(source), split)
        else:
            for path in split_files(source, split):
                records += _file_records(task, path)
    if not records:
        raise DataError(f"task {task.name}: the {split} split of {', '.join(sources)} is empty")
    return records


def load_task_splits(task: Task, data: TaskDataConfig, test_files: list[str]) -> TaskSplits:
    """Train, validation (given, the data's own, or a seeded hold-out) and test (if any)."""
    sources = [data.dataset_name] if data.dataset_name else list(data.train_files)
    if not sources:
        raise DataError("no training data: set data.train_files (--data) or data.dataset_name")
    config = data.dataset_config_name
    train = load_task_records(task, sources, "train", dataset_config=config)
    task.learn_from(train)
    if data.validation_files:
        validation = load_task_records(task, data.validation_files, "validation")
        where = ", ".join(data.validation_files)
    elif has_split(sources, "validation", config):
        validation = load_task_records(task, sources, "validation", dataset_config=config)
        where = "the data's validation split"
    else:
        train, validation = hold_out(train, data.validation_split, data.seed)
        where = f"{data.validation_split:.0%} of the training records"
        if not validation:
            raise DataError("the validation split is empty; raise data.validation_split")
    if test_files:
        test = load_task_records(task, test_files, "test")
    elif has_split(sources, "test", config):
        test = load_task_records(task, sources, "test", dataset_config=config)
    else:
        test = []
    return TaskSplits(train, validation, test, where)


# --------------------------------------------------------------------------------------------
# Where a split's records are


def has_split(sources: list[str], split: str, dataset_config: str | None) -> bool:
    for source in sources:
        if is_hub_name(source):
            try:
                names = datasets.get_dataset_split_names(source, dataset_config)
            except Exception:  # the train split already loaded; a missing listing is not fatal
                return False
            if split_named(names, split):
                return True
        elif is_saved_dataset(Path(source)):
            if split_named(saved_splits(Path(source)), split):
                return True
        elif Path(source).is_dir():
            files = resolve_files([source])
            if any(split_of(f) == split for f in files):
                return True
    return False


def hold_out(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded hold-out by content hash: adding records moves no other record."""
    train, held = [], []
    threshold = int(fraction * 2**32)
    for r in records:
        key = f"{seed}\0{json.dumps(r, sort_keys=True, default=str)}".encode()
        h = int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big")
        (held if h < threshold else train).append(r)
    return train, held


# --------------------------------------------------------------------------------------------
# Reading


def _file_records(task: Task, path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [task.normalize(record, f"data file {path} line {n}") for n, record in _jsonl(path)]
    rows = _json_rows(path) if path.suffix == ".json" else load_files([path]).to_list()
    return [task.normalize(r, f"data file {path} record {i + 1}") for i, r in enumerate(rows)]


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    out = []
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            out.append((n, parse_json_line(raw, path, n)))
    return out


def _json_rows(path: Path) -> list[dict]:
    """A list of records, ``{"data": [records]}``, or the nested SQuAD layout."""
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        reason = getattr(e, "msg", None) or str(e)
        raise DataError(f"data file {path}: not valid JSON ({reason}); fix the file") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(
            f'data file {path}: expected a list of records or {{"data": [...]}}; '
            "write JSON Lines (.jsonl) or a list"
        )
    if data and all(isinstance(d, dict) and "paragraphs" in d for d in data):
        return squad_rows(data)
    return data


def squad_rows(articles: list[dict]) -> list[dict]:
    """The original SQuAD layout (``data/paragraphs/qas``) as one flat record per question."""
    rows = []
    for article in articles:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                rows.append(
                    {
                        "id": qa.get("id"),
                        "title": article.get("title"),
                        "context": paragraph.get("context"),
                        "question": qa.get("question"),
                        "answers": qa.get("answers", []),
                        **({"is_impossible": qa["is_impossible"]} if "is_impossible" in qa else {}),
                    }
                )
    return rows


def _saved_records(task: Task, path: Path, split: str) -> list[dict]:
    ds = load_saved(path, split)
    return [task.normalize(r, f"dataset folder {path} row {i + 1}") for i, r in enumerate(ds)]


def _hub_records(task: Task, name: str, config: str | None, split: str) -> list[dict]:
    try:
        names = datasets.get_dataset_split_names(name, config)
        chosen = split_named(names, split) or split
        ds = datasets.load_dataset(name, config, split=chosen)
    except Exception as e:  # the Hub raises many types; the user needs one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"dataset {name!r}: not a local file or folder, and the Hub could not load its "
            f"{split} split ({first}); check the name or the path"
        ) from None
    return [task.normalize(r, f"dataset {name} {chosen} row {i + 1}") for i, r in enumerate(ds)]
