"""Find and load raw data: local files, folders, globs, save_to_disk folders.

Loading goes through ``datasets``; what it reports badly (a malformed JSON line, an empty file,
a missing column) is checked here first so the user gets one line naming the file and the fix.
``llmkit.data.read`` streams the same sources document by document for data preparation.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import datasets

from llmkit.errors import DataError

# Reading local files is fast; llmkit shows its own bars for the slow steps (tokenizing, training).
datasets.disable_progress_bars()

BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def resolve_files(patterns: list[str], option: str = "data.train_files") -> list[Path]:
    """Expand folders and globs into a sorted list of supported files."""
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            if is_saved_dataset(path):
                files.append(path)
                continue
            found = sorted(p for p in path.rglob("*") if p.suffix in BUILDERS and p.is_file())
            if not found:
                raise DataError(
                    f"{option}: folder {path} holds no {'/'.join(BUILDERS)} files; "
                    "point it at a folder with data files"
                )
            files.extend(found)
        elif any(c in pattern for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            if not found:
                raise DataError(f"{option}: no file matches {pattern!r}; check the pattern")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{option}: data file {path} not found; check the path")
    files = list(dict.fromkeys(files))  # a file named twice (folder and glob) is read once
    for f in files:
        if f.is_file() and f.suffix not in BUILDERS:
            raise DataError(
                f"{option}: {f} has unsupported type {f.suffix!r}; use one of {', '.join(BUILDERS)}"
            )
        if f.is_file() and f.stat().st_size == 0:
            raise DataError(f"{option}: data file {f} is empty; remove it or add text")
    return files


SPLIT_NAMES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev", "eval"),
    "test": ("test", "testing"),
}


def split_named(names: list[str], split: str) -> str | None:
    """The name a dataset gives ``split`` ("validation" may be "dev" or "valid"), if any."""
    return next((n for n in SPLIT_NAMES.get(split, (split,)) if n in names), None)


def is_hub_name(source: str) -> bool:
    """``squad`` or ``owner/name``: not a local path, a glob or a data file name."""
    return (
        not Path(source).exists()
        and not any(c in source for c in "*?[")
        and Path(source).suffix not in BUILDERS
        and not source.startswith((".", "/", "~"))
        and source.count("/") <= 1
    )


def split_files(source: str, split: str) -> list[Path]:
    """A folder's files named for ``split`` (all its files if none is named for a split)."""
    files = resolve_files([source], "task data")
    if not Path(source).is_dir():
        return files
    named = {s: [f for f in files if split_of(f) == s] for s in SPLIT_NAMES}
    if not any(named.values()):
        return files
    if not named.get(split):
        found = ", ".join(s for s, fs in named.items() if fs)
        looked = f" (looked for {', '.join(SPLIT_NAMES[split])}.*)" if split in SPLIT_NAMES else ""
        raise DataError(
            f"folder {source} holds no {split} file{looked}; its splits are {found}: choose "
            f"one of them, or add {split} files"
        )
    return named[split]


def split_of(path: Path) -> str | None:
    """The split a file is named for (``train.jsonl``, ``dev-00.csv`` ...), or None."""
    first = re.split(r"[^a-z]+", path.stem.lower())[0]
    return next((s for s, names in SPLIT_NAMES.items() if first in names), None)


def load_saved(path: Path, split: str = "train") -> datasets.Dataset:
    """A ``save_to_disk`` folder: a Dataset as it is, or a DatasetDict's ``split`` (found by
    its usual names; a DatasetDict without a train split trains on its first one)."""
    ds = datasets.load_from_disk(str(path))
    if not isinstance(ds, datasets.DatasetDict):
        return ds
    chosen = split_named(list(ds), split) or (next(iter(ds)) if split == "train" else None)
    if chosen is None:
        raise DataError(
            f"dataset folder {path} has no {split} split (it has {', '.join(ds)}); "
            f"save one or give the {split} data explicitly"
        )
    return ds[chosen]


def is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()


def saved_splits(path: Path) -> list[str]:
    """The splits of a ``save_to_disk`` DatasetDict folder; [] for a single Dataset."""
    listing = path / "dataset_dict.json"
    return json.loads(listing.read_text())["splits"] if listing.is_file() else []


def parse_json_line(raw: bytes | str, path: Path, lineno: int, label: str = "data file") -> Any:
    """One JSON Lines value, or one line naming the file and line to fix."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        reason = getattr(e, "msg", None) or str(e)
        raise DataError(
            f"{label} {path} line {lineno}: not valid JSON ({reason}); fix the line or drop it"
        ) from None


def json_record(
    raw: bytes | str, path: Path, lineno: int, column: str | None, label: str = "data file"
) -> dict:
    """A JSON Lines object (holding ``column`` when one is named), or one line saying why not."""
    record = parse_json_line(raw, path, lineno, label)
    if not isinstance(record, dict):
        raise DataError(
            f"{label} {path} line {lineno}: expected a JSON object, got "
            f"{type(record).__name__}; write one object per line"
        )
    if column is not None and column not in record:
        raise DataError(
            f"data file {path} line {lineno}: no column {column!r} (has "
            f"{', '.join(record) or 'none'}); set data.text_column"
        )
    return record


def check_jsonl(path: Path, text_column: str | None) -> None:
    """Find the first malformed line ourselves: ``datasets`` only says that loading failed."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if raw.strip():
                json_record(raw, path, lineno, text_column)


def load_files(files: list[Path], text_column: str | None = None) -> datasets.Dataset:
    """One ``datasets.Dataset`` over all files (they must share a type)."""
    parts = []
    for f in files:
        if f.is_dir():
            parts.append(load_saved(f))
            continue
        if f.suffix == ".jsonl":
            check_jsonl(f, text_column)
        builder = BUILDERS[f.suffix]
        kwargs = {"sample_by": "paragraph"} if builder == "text" else {}
        try:
            ds = datasets.load_dataset(builder, data_files=str(f), split="train", **kwargs)
        except Exception as e:  # datasets wraps parser errors in many types
            raise DataError(
                f"data file {f}: cannot be read ({_cause(e)}); check its format"
            ) from None
        parts.append(ds)
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def texts_of(ds: datasets.Dataset, column: str, source: object) -> list[str]:
    if column not in ds.column_names:
        raise DataError(
            f"{_name(source)}: no column {column!r} (columns: {', '.join(ds.column_names)}); "
            "set data.text_column"
        )
    texts = [t for t in ds[column] if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError(f"{_name(source)}: column {column!r} holds no text; check the file")
    return texts


def files_fingerprint(files: list[Path]) -> str:
    """Path, size and modification time of every file: cheap, and changes when the data does."""
    parts = []
    for f in files:
        for p in [f] if f.is_file() else sorted(x for x in f.rglob("*") if x.is_file()):
            st = p.stat()
            parts.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return _hash(parts)


def content_fingerprint(files: list[Path]) -> dict[str, str]:
    """sha256 of every file's bytes (folders: of all their files), for the manifest."""
    out = {}
    for f in files:
        digest = hashlib.sha256()
        for p in [f] if f.is_file() else sorted(x for x in f.rglob("*") if x.is_file()):
            with p.open("rb") as fh:
                while block := fh.read(1 << 24):
                    digest.update(block)
        out[str(f)] = digest.hexdigest()[:16]
    return out


def _hash(parts: list[object]) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()[:16]


def _name(source: object) -> str:
    if isinstance(source, list):
        return "data file " + ", ".join(map(str, source[:3])) + (" ..." if len(source) > 3 else "")
    return f"dataset {source}"


def _cause(e: BaseException) -> str:
    while e.__cause__ is not None:
        e = e.__cause__
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
