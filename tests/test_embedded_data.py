"""The embedded data is exactly what its generator writes, and every task file is well formed.

Other tests and the recipes train on these files, so a silent drift (a hand edit, a generator
change without regenerating, a broken answer span) must fail here first.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
GENERATOR = DATA / "generate.py"
SPLITS = ("train", "validation", "test")
TASKS = ("qa", "summarization", "translation")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_files(root: Path) -> set[str]:
    """Generated files under root, relative; the generator itself and caches are not data."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != "generate.py" and "__pycache__" not in p.parts
    }


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def task(name: str) -> dict[str, list[dict]]:
    return {split: read_jsonl(DATA / "tasks" / name / f"{split}.jsonl") for split in SPLITS}


def assert_disjoint(keys_by_split: dict[str, set[str]]) -> None:
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = keys_by_split[a] & keys_by_split[b]
            assert not shared, f"{a}/{b} share {len(shared)}: {sorted(shared)[:3]}"


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(tmp_path), "--seed", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fresh = data_files(tmp_path)
    assert "pretrain/corpus.jsonl" in fresh
    assert {f"tasks/{t}/{s}.jsonl" for t in TASKS for s in SPLITS} <= fresh
    assert fresh == data_files(DATA), (
        "data/ holds files the generator does not write, or lacks some"
    )
    changed = [name for name in sorted(fresh) if sha256(tmp_path / name) != sha256(DATA / name)]
    assert not changed, f"regenerate with `python data/generate.py`: {changed}"


def test_generator_is_stdlib_only() -> None:
    tree = ast.parse(GENERATOR.read_text(encoding="utf-8"))
    modules = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    third_party = {m for m in modules if m.split(".")[0] not in sys.stdlib_module_names}
    assert not third_party


def test_total_size_is_small() -> None:
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 8 * 1024 * 1024


def test_corpus_has_unique_documents_and_enough_text() -> None:
    path = DATA / "pretrain" / "corpus.jsonl"
    assert path.stat().st_size > 1_000_000
    rows = read_jsonl(path)
    texts = [row["text"] for row in rows]
    assert all(list(row) == ["text"] for row in rows)
    assert all(text.strip() and text.endswith(".") for text in texts)
    assert len(set(texts)) == len(texts), "duplicate documents in the corpus"


@pytest.mark.parametrize("split", SPLITS)
def test_qa_answers_are_exact_spans(split: str) -> None:
    rows = task("qa")[split]
    assert len(rows) >= 300
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert list(row) == ["id", "title", "context", "question", "answers"]
        assert row["question"].endswith("?")
        texts, starts = row["answers"]["text"], row["answers"]["answer_start"]
        assert len(texts) == len(starts) >= 1
        for text, start in zip(texts, starts):
            assert text.strip()
            assert row["context"][start : start + len(text)] == text, row["id"]


def test_qa_splits_are_disjoint_by_entity_and_context() -> None:
    rows = task("qa")
    assert_disjoint({s: {r["title"] for r in rows[s]} for s in SPLITS})
    assert_disjoint({s: {r["context"] for r in rows[s]} for s in SPLITS})


def test_summarization_rows() -> None:
    rows = task("summarization")
    assert_disjoint({s: {r["document"] for r in rows[s]} for s in SPLITS})
    for split in SPLITS:
        assert len(rows[split]) >= 200
        for row in rows[split]:
            assert list(row) == ["document", "summary"]
            assert row["summary"].count(". ") == 0 and row["summary"].endswith(".")
            assert len(row["summary"]) < len(row["document"])


def test_translation_has_both_languages() -> None:
    rows = task("translation")
    assert_disjoint({s: {r["translation"]["en"] for r in rows[s]} for s in SPLITS})
    for split in SPLITS:
        assert len(rows[split]) >= 300
        for row in rows[split]:
            pair = row["translation"]
            assert list(pair) == ["en", "fr"]
            assert pair["en"].strip() and pair["fr"].strip()
            assert pair["en"] != pair["fr"]
