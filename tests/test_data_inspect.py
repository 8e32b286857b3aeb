"""`llmkit data inspect` on prepared folders and raw files, with planted duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHAKESPEARE
from transformers import AutoTokenizer

from llmkit.cli import main
from llmkit.config.steps import ExactDedupConfig, NearDedupConfig
from llmkit.data.dedup import exact_dedup, near_dedup
from llmkit.data.documents import StepReport, paragraphs
from llmkit.data.inspect import document_lengths, inspect_path

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """300 long Shakespeare paragraphs that are neither exact nor near duplicates."""
    docs = paragraphs(SHAKESPEARE.read_text(encoding="utf-8"), "shk")
    candidates = [d for d in docs if len(d.text.split()) >= 20][:350]
    exact, near = StepReport("e"), StepReport("n")
    list(near_dedup(exact_dedup(candidates, ExactDedupConfig(), exact), NearDedupConfig(), near))
    clustered = {
        i for r in (exact, near) for k, v in r.details["clusters"].items() for i in [k, *v]
    }
    return [d.text for d in candidates if d.id not in clustered][:300]


def prepare(out: Path, data: Path, *extra: str) -> Path:
    args = ["data", "prepare", "--output_dir", str(out), "--data.train_files", str(data)]
    args += ["--show_progress", "false", "--tokenizer.vocab_size", "400", *extra]
    assert main(args) == 0
    return out


def test_prepared_folder_lengths_duplicate_blocks_and_samples(tmp_path, texts, capsys):
    # Five documents repeated once each, dedup off: a copy lands in its original's split and,
    # with document packing, repeats every block of it.
    corpus = texts + texts[:5]
    data = tmp_path / "c.txt"
    data.write_text("\n\n".join(corpus))
    off = ["--data.exact_dedup.enabled", "false", "--data.near_dedup.enabled", "false"]
    off += ["--data.clean.enabled", "false"]
    out = prepare(
        tmp_path / "doc", data, "--data.block_size", "32", "--data.packing", "document", *off
    )
    capsys.readouterr()

    assert main(["data", "inspect", str(out), "--samples", "2"]) == 0
    printed = capsys.readouterr().out
    assert "duplicate full blocks" in printed and "samples" in printed and "lengths.png" in printed
    summary = inspect_path(str(out), samples=2)
    manifest = json.loads((out / "manifest.json").read_text())

    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    per_doc = {t: len(ids) + 1 for t, ids in zip(corpus, tok(corpus).input_ids)}
    assert sorted(summary["document_lengths"].tolist()) == sorted(per_doc[t] for t in corpus)
    splits = summary["splits"]
    repeated = sum(per_doc[t] // 32 for t in corpus[:5])  # full blocks only
    assert sum(s["duplicate_blocks"] for s in splits.values()) == repeated
    for name, s in splits.items():
        assert s["blocks"] == manifest["splits"][name]["num_blocks"]
        assert s["tokens"] == manifest["counts"][name]["tokens"]
    assert len(summary["samples"]) == 2
    assert (out / "lengths.png").read_bytes().startswith(PNG)


def test_document_lengths_in_concat_blocks():
    eos = 9
    stream = np.array([1, 2, 9, 3, 9, 4, 5, 6, 7, 9, 1, 9, 2, 2])  # documents of 3, 2, 5, 2
    blocks = stream[:12].reshape(3, 4)  # the tail [2, 2] was dropped
    assert document_lengths(blocks, None, eos).tolist() == [3, 2, 5, 2]
    padded = np.array([[1, 9, 0, 0], [2, 2, 2, 2], [2, 9, 0, 0]])
    valid = np.array([2, 4, 2])
    assert document_lengths(padded, valid, eos).tolist() == [2, 6]


def test_raw_file_counts_duplicates_and_bad_bytes(tmp_path, texts, tiny_tokenizer, monkeypatch):
    long = next(i for i, t in enumerate(texts) if i > 60 and len(t.split()) >= 60)
    rows = [{"text": t} for t in texts[:200]]
    exact_copy, near_copy = texts[7].upper(), texts[long].rsplit(" ", 1)[0] + " zounds"
    rows.insert(50, {"text": exact_copy})  # case is normalised: an exact duplicate
    rows.insert(120, {"text": near_copy})  # the last word changed: a near duplicate
    rows.insert(150, {"text": "   "})  # blank
    lines = [json.dumps(r).encode() for r in rows]
    lines[10] = lines[10].replace(b"a", b"\xff", 1)  # one invalid byte
    data = tmp_path / "raw.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    monkeypatch.chdir(tmp_path)

    summary = inspect_path(str(data), samples=4, tokenizer=str(tmp_path / "tok"))
    assert summary["records"] == 203 and summary["documents"] == 202
    assert summary["exact_duplicates"] == 1 and summary["near_duplicates"] == 1

    def line(text: str) -> str:
        return f"{data}:{1 + [r['text'] for r in rows].index(text)}"

    assert summary["clusters"] == {
        line(texts[7]): [line(exact_copy)],
        line(texts[long]): [line(near_copy)],
    }
    assert summary["invalid_utf8"] == 1
    expected = [len(tiny_tokenizer(r["text"]).input_ids) for r in rows if r["text"].strip()]
    got = summary["lengths"].tolist()
    assert got[:10] + got[11:] == expected[:10] + expected[11:]
    assert len(summary["samples"]) == 4
    assert Path("raw.lengths.png").read_bytes().startswith(PNG)


def test_bad_path_is_one_line(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.txt" in err[0] and "not found" in err[0]
