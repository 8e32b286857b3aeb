"""`llmkit data prepare` end to end on Tiny Shakespeare and on crafted inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import SHAKESPEARE, pretrain_args
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from llmkit import config as config_lib
from llmkit.cli import main
from llmkit.config import DataConfig, DataPrepareConfig, TokenizerConfig
from llmkit.config.steps import ExactDedupConfig, NearDedupConfig
from llmkit.data import pack
from llmkit.data.dedup import exact_dedup, near_dedup
from llmkit.data.documents import Doc, StepReport, normalised_words, paragraphs
from llmkit.data.encode import DocSpill, encode_chunks
from llmkit.data.prepare import cache_key, prepare_data
from llmkit.data.stream import Sources, documents, new_reports

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes" / "data").glob("*.yaml"))


@pytest.fixture(scope="module")
def shk_docs() -> list[Doc]:
    return paragraphs(SHAKESPEARE.read_text(encoding="utf-8"), "shk")


def prepare_args(out: Path, *extra: str) -> list[str]:
    return ["data", "prepare", "--output_dir", str(out), "--show_progress", "false", *extra]


def write_docs(path: Path, texts: list[str]) -> Path:
    path.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    return path


def kept_documents(folder: Path) -> dict[str, list[str]]:
    """The documents of each split, in order, as the saved config's steps produce them."""
    cfg = config_lib.build(DataPrepareConfig, folder / "llmkit_config.yaml", {})
    out: dict[str, list[str]] = {}
    for name, doc in documents(Sources.resolve(cfg.data), cfg.data, new_reports()):
        out.setdefault(name, []).append(doc.text)
    return out


# --- the recipe on real text -------------------------------------------------------------


@pytest.fixture(scope="module")
def shakespeare_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepare") / "shakespeare"
    recipe = ROOT / "recipes" / "data" / "shakespeare.yaml"
    overrides = ["--data.train_files", str(SHAKESPEARE), "--tokenizer.vocab_size", "512"]
    assert main(prepare_args(out, "--recipe", str(recipe), *overrides)) == 0
    return out


def test_recipe_writes_manifest_report_and_lossless_blocks(shakespeare_run, capsys):
    out = shakespeare_run
    names = {p.name for p in out.iterdir()}
    assert {"train.bin", "validation.bin", "test.bin", "manifest.json", "report.json"} <= names
    assert {"tokenizer", "llmkit_config.yaml"} <= names
    assert not [n for n in names if n.startswith(".")], "no work files may stay behind"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]

    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert manifest["block_size"] == 256 and manifest["packing"] == "concat"
    assert manifest["sources"] == {str(SHAKESPEARE): manifest["sources"][str(SHAKESPEARE)]}
    assert len(manifest["tokenizer_hash"]) == 16 and manifest["settings"]["near_dedup"]
    steps = {s["name"]: s for s in report["steps"]}
    # Tiny Shakespeare: 7,222 paragraphs, 76 of them repeat an earlier one once lowercased and
    # with whitespace collapsed (counted here independently of llmkit), 3 are near copies.
    paras = [p.strip("\n") for p in re.split(r"\n\s*\n", SHAKESPEARE.read_text()) if p.strip()]
    keys = [" ".join(p.lower().split()) for p in paras]
    assert steps["read"]["docs_out"] == len(paras) == 7222
    assert len(keys) - len(set(keys)) == 76
    assert steps["exact_dedup"]["removed"] == {"exact_duplicate": 76}
    assert steps["near_dedup"]["removed"] == {"near_duplicate": 3}
    assert len(steps["near_dedup"]["details"]["clusters"]) == 3
    for a, b in zip(report["steps"], report["steps"][1:]):
        assert a["docs_out"] == b["docs_in"] and a["chars_out"] == b["chars_in"]
    sizes = steps["split"]["details"]["sizes"]
    assert sum(sizes.values()) == 7222 - 79
    assert (
        abs(sizes["validation"] / 7143 - 0.05) < 0.01 and abs(sizes["test"] / 7143 - 0.01) < 0.005
    )

    # Packing loses no token: blocks are the documents + EOS, concatenated, minus the tail.
    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    docs = kept_documents(out)
    for name, split in pack.read_packed(out).items():
        counts = manifest["counts"][name]
        assert counts["documents"] == len(docs[name]) == sizes[name]
        expected = np.concatenate(
            [np.array(ids + [tok.eos_token_id]) for ids in tok(docs[name]).input_ids]
        )
        blocks = split.open()
        assert blocks.shape == (counts["blocks"], 256)
        assert len(expected) == counts["tokens"] == blocks.size + counts["dropped_tail_tokens"]
        assert counts["dropped_tail_tokens"] < 256
        assert np.array_equal(blocks.reshape(-1), expected[: blocks.size])

    # The resolved config repeats the run; the printed report is the saved one.
    again = config_lib.build(DataPrepareConfig, out / "llmkit_config.yaml", {})
    assert again.data.block_size == 256 and again.data.test_split == 0.01


def test_every_data_recipe_parses_and_says_how_to_run_it():
    assert {p.name for p in RECIPES} >= {"shakespeare.yaml", "corpus.yaml"}
    for recipe in RECIPES:
        first = recipe.read_text().splitlines()[0]
        assert first == f"# run: llmkit data prepare --recipe recipes/data/{recipe.name}"
        cfg = config_lib.build(DataPrepareConfig, recipe, {})
        cfg.validate()
        assert yaml.safe_load(recipe.read_text())["output_dir"].startswith("runs/data/")


# --- crafted inputs ------------------------------------------------------------------------


def line_of(texts: list[str], i: int) -> int:
    """The line paragraph ``i`` starts on in ``write_docs(texts)``."""
    return 1 + sum(t.count("\n") + 2 for t in texts[:i])


def distinct_paragraphs(docs: list[Doc], n: int, min_words: int) -> list[str]:
    """``n`` long paragraphs that the dedup steps leave alone (the corpus's own duplicates
    are checked in the first test)."""
    candidates = [d for d in docs if len(d.text.split()) >= min_words][: n + 50]
    exact, near = StepReport("e"), StepReport("n")
    list(near_dedup(exact_dedup(candidates, ExactDedupConfig(), exact), NearDedupConfig(), near))
    clustered = {
        i for r in (exact, near) for k, v in r.details["clusters"].items() for i in [k, *v]
    }
    texts = [d.text for d in candidates if d.id not in clustered][:n]
    assert len(texts) == n
    return texts


def test_planted_duplicates_are_all_found_and_nothing_else(tmp_path, shk_docs, capsys):
    base = distinct_paragraphs(shk_docs, 300, 40)
    swap_last = base[40].rsplit(" ", 1)[0] + " zounds"
    swap_first = "Forsooth " + base[200].split(" ", 1)[1]
    plants = {  # position in the corpus -> (index of the original, copy)
        20: (3, base[3].upper()),  # case and layout do not matter to exact dedup
        150: (100, "  " + base[100].replace(" ", "   ")),
        250: (40, swap_last),  # one word changed: a near duplicate
        300: (200, swap_first),
    }
    texts = list(base)
    for pos, (_, text) in sorted(plants.items(), reverse=True):
        texts.insert(pos, text)
    data = write_docs(tmp_path / "planted.txt", texts)

    out = tmp_path / "out"
    args = ["--data.train_files", str(data), "--data.block_size", "64"]
    assert main(prepare_args(out, *args, "--tokenizer.vocab_size", "400")) == 0
    table = capsys.readouterr().out
    assert "exact_duplicate=2" in table and "near_duplicate=2" in table
    steps = {s["name"]: s for s in json.loads((out / "report.json").read_text())["steps"]}

    def doc_id(text: str) -> str:
        return f"{data}:{line_of(texts, texts.index(text))}"

    expected = {
        pos: {doc_id(base[original]): [doc_id(copy)]} for pos, (original, copy) in plants.items()
    }
    assert steps["exact_dedup"]["details"]["clusters"] == {**expected[20], **expected[150]}
    assert steps["near_dedup"]["details"]["clusters"] == {**expected[250], **expected[300]}
    assert steps["split"]["docs_in"] == 300


def test_split_is_stable_when_documents_are_appended(tmp_path, shk_docs):
    texts = [d.text for d in shk_docs]
    first = write_docs(tmp_path / "a.txt", texts[:3000])
    more = write_docs(tmp_path / "b.txt", texts[3000:6000])

    def assignment(files: list[Path]) -> dict[str, str]:
        data = DataConfig(
            train_files=[str(f) for f in files], validation_split=0.1, test_split=0.05
        )
        return {d.text: s for s, d in documents(Sources.resolve(data), data, new_reports())}

    before, after = assignment([first]), assignment([first, more])
    assert all(after[t] == s for t, s in before.items())
    held = sum(s != "train" for s in after.values()) / len(after)
    assert 0.12 < held < 0.18


def test_decontamination_removes_exactly_the_planted_overlaps(tmp_path, shk_docs, capsys):
    texts = distinct_paragraphs(shk_docs, 400, 30)
    data = write_docs(tmp_path / "train.txt", texts)
    words = [normalised_words(t) for t in texts]
    hits, misses = (10, 200, 333), (50, 60)

    def occurrences(seq: list[str]) -> int:
        return sum(" ".join(seq) in " ".join(w) for w in words)

    # An evaluation file in the SQuAD layout: 13 words of 3 paragraphs, in nested fields too,
    # and 12 words (one short) of 2 others, which must not count.
    assert all(occurrences(words[i][5:18]) == 1 for i in hits)
    rows = [
        {"question": "Who?", "context": "A quote: " + " ".join(words[i][5:18]), "answers": {}}
        for i in hits[:2]
    ]
    answer = " ".join(words[hits[2]][5:18])
    rows.append({"question": "x", "context": "y", "answers": {"text": [answer]}})
    rows += [{"question": "qqq " + " ".join(words[i][2:14]), "context": "zzz"} for i in misses]
    evals = tmp_path / "eval.jsonl"
    evals.write_text("".join(json.dumps(r) + "\n" for r in rows))

    out = tmp_path / "out"
    args = ["--data.train_files", str(data), "--data.decontaminate.eval_files", str(evals)]
    args += ["--data.block_size", "64", "--tokenizer.vocab_size", "400"]
    assert main(prepare_args(out, *args)) == 0
    report = json.loads((out / "report.json").read_text())
    step = next(s for s in report["steps"] if s["name"] == "decontaminate")
    assert set(step["details"]["matches"]) == {f"{data}:{line_of(texts, i)}" for i in hits}
    assert step["removed"] == {"eval_overlap": 3}
    assert step["details"]["eval_sources"] == [str(evals)]
    assert "eval_overlap=3" in capsys.readouterr().out


def test_document_packing_never_crosses_a_boundary(tmp_path, shk_docs):
    texts = [d.text for d in shk_docs[:600]]
    data = write_docs(tmp_path / "d.txt", texts)
    common = ["--data.train_files", str(data), "--data.block_size", "32"]
    common += ["--data.packing", "document", "--tokenizer.vocab_size", "400"]
    common += ["--data.exact_dedup.enabled", "false", "--data.near_dedup.enabled", "false"]
    assert main(prepare_args(tmp_path / "pad", *common)) == 0
    assert main(prepare_args(tmp_path / "drop", *common, "--data.remainder", "drop")) == 0

    tok = AutoTokenizer.from_pretrained(tmp_path / "pad" / "tokenizer")
    docs = kept_documents(tmp_path / "pad")["train"]
    ids = [x + [tok.eos_token_id] for x in tok(docs).input_ids]
    lengths = np.array([len(x) for x in ids])

    padded = pack.read_packed(tmp_path / "pad")["train"]
    blocks, valid = padded.open(), padded.lengths()
    assert len(blocks) == int(np.ceil(lengths / 32).sum()) == len(valid)
    # Every block holds one document's tokens; only the last block of a document has an EOS.
    real = [blocks[i, : valid[i]] for i in range(len(blocks))]
    assert np.array_equal(np.concatenate(real), np.concatenate(ids))
    eos_at = [np.flatnonzero(r == tok.eos_token_id) for r in real]
    assert all(len(e) == 0 or list(e) == [len(r) - 1] for e, r in zip(eos_at, real))
    assert sum(len(e) for e in eos_at) == len(docs)
    counts = json.loads((tmp_path / "pad" / "manifest.json").read_text())["counts"]["train"]
    assert (
        counts["padding_tokens"] == blocks.size - lengths.sum()
        and counts["dropped_tail_tokens"] == 0
    )
    # The training example masks the padding out of the loss.
    short = int(np.flatnonzero(valid < 32)[0])
    item = pack.BlockDataset(padded)[short]
    assert (item["labels"][valid[short] :] == -100).all()
    assert (item["labels"][: valid[short]] == item["input_ids"][: valid[short]]).all()

    dropped = pack.read_packed(tmp_path / "drop")["train"]
    assert dropped.lengths() is None and dropped.num_blocks == int((lengths // 32).sum())
    full = np.concatenate([x[: len(x) // 32 * 32] for x in map(np.array, ids)])
    assert np.array_equal(dropped.open().reshape(-1), full)


def test_parallel_tokenization_matches_one_process(tmp_path, shk_docs, tiny_tokenizer):
    spill = DocSpill(tmp_path / "spill.txt", chunk_bytes=40_000)
    for d in shk_docs[:3000]:
        spill.write(d.text)
    spill.close()
    assert len(spill.chunks) >= 8
    backend = Tokenizer.from_str(tiny_tokenizer.backend_tokenizer.to_str())
    eos = tiny_tokenizer.eos_token_id
    serial = list(encode_chunks(backend, spill.chunks, eos, np.uint16, num_proc=1))
    parallel = list(encode_chunks(backend, spill.chunks, eos, np.uint16, num_proc=2))
    assert len(serial) == len(parallel) == len(spill.chunks)
    for (a, la), (b, lb) in zip(serial, parallel):
        assert np.array_equal(a, b) and np.array_equal(la, lb)
    tokens = np.concatenate([t for t, _ in serial])
    assert (tokens == eos).sum() == 3000
    direct = tiny_tokenizer([d.text for d in shk_docs[:3000]]).input_ids
    assert np.array_equal(tokens, np.concatenate([np.array(x + [eos]) for x in direct]))


def test_pack_documents_crafted():
    tokens = np.arange(1, 11, dtype=np.uint16)  # documents of 3, 1 and 6 tokens
    lengths = np.array([3, 1, 6])
    blocks, valid = pack.pack_documents(tokens, lengths, 4, "pad", 0)
    assert blocks.tolist() == [[1, 2, 3, 0], [4, 0, 0, 0], [5, 6, 7, 8], [9, 10, 0, 0]]
    assert valid.tolist() == [3, 1, 4, 2]
    blocks, valid = pack.pack_documents(tokens, lengths, 4, "drop", 0)
    assert blocks.tolist() == [[5, 6, 7, 8]] and valid.tolist() == [4]


# --- pretraining runs the same steps --------------------------------------------------------


def test_cache_key_covers_step_settings():
    a = DataConfig(train_files=["x.txt"])
    b = DataConfig(train_files=["x.txt"])
    b.near_dedup.threshold = 0.9
    c = DataConfig(train_files=["x.txt"], cache_dir="elsewhere", num_proc=3)
    tok = TokenizerConfig()
    assert cache_key(a, tok, "f") != cache_key(b, tok, "f")
    assert cache_key(a, tok, "f") == cache_key(c, tok, "f")  # where and how fast: not what
    assert cache_key(a, tok, "f") != cache_key(a, tok, "g")


def test_pretrain_dedups_first_and_reads_a_prepared_folder(tmp_path, shk_docs, capsys):
    texts = [d.text for d in shk_docs[:800]]
    data = write_docs(tmp_path / "dup.txt", texts + texts[:100])  # 100 exact copies
    cache = tmp_path / "cache"
    data_cfg = DataConfig(train_files=[str(data)], block_size=64, cache_dir=str(cache))
    prepared = prepare_data(data_cfg, TokenizerConfig(vocab_size=512), show_progress=True)
    assert "exact_duplicate=" in capsys.readouterr().out
    steps = {s["name"]: s for s in prepared.report["steps"]}
    assert steps["exact_dedup"]["removed"]["exact_duplicate"] >= 100
    again = prepare_data(data_cfg, TokenizerConfig(vocab_size=512), show_progress=False)
    assert again.cached and again.folder == prepared.folder

    # `llmkit data prepare` once, then pretrain straight from its folder.
    folder = tmp_path / "prepared"
    assert (
        main(prepare_args(folder, "--data.train_files", str(data), "--data.block_size", "64")) == 0
    )
    capsys.readouterr()
    args = pretrain_args(tmp_path / "run", folder, tmp_path / "unused", "--train.max_steps", "2")
    assert main(args) == 0
    assert "(cached)" in capsys.readouterr().out
    assert not (tmp_path / "unused").exists()
    code = main(pretrain_args(tmp_path / "run2", folder, cache, "--data.block_size", "32"))
    assert code == 2 and "block_size 64" in capsys.readouterr().err


# --- bad input: one line naming the file and the fix, exit 2, nothing written ---------------


def bad_inputs(tmp: Path, shk: list[Doc]) -> dict[str, tuple[Path, tuple[str, ...]]]:
    latin1 = tmp / "latin1.txt"
    latin1.write_bytes("Été déjà là: où êtes-vous, garçon?\n\nÇa va très bien.\n".encode("latin-1"))
    empty = tmp / "empty.txt"
    empty.write_text("")
    folder = tmp / "folder"
    folder.mkdir()
    (folder / "notes.md").write_text("not a data file")
    not_object = tmp / "list.jsonl"
    not_object.write_text('{"text": "fine"}\n["a", "list"]\n')
    no_column = tmp / "body.jsonl"
    no_column.write_text('{"text": "fine"}\n{"body": "no text column here"}\n')
    dups = write_docs(tmp / "dups.txt", [shk[5].text] * 50 + [shk[5].text.upper()] * 50)
    return {
        "not utf-8": (latin1, ("latin1.txt", "not UTF-8", "iconv")),
        "empty": (empty, ("empty.txt", "is empty")),
        "no matching files": (folder, ("folder", "holds no")),
        "not an object": (not_object, ("list.jsonl line 2", "expected a JSON object")),
        "no text column": (no_column, ("body.jsonl line 2", "no column 'text'", "text_column")),
        "all duplicates": (dups, ("100 documents read, 1 kept", "all duplicates", "nothing")),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not utf-8",
        "empty",
        "no matching files",
        "not an object",
        "no text column",
        "all duplicates",
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, shk_docs, capsys, case):
    data, expected = bad_inputs(tmp_path, shk_docs[:10])[case]
    out = tmp_path / "nested" / "out"  # parents that do not exist yet must not be left behind
    code = main(prepare_args(out, "--data.train_files", str(data)))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    for text in expected:
        assert text in err[0], err[0]
    assert not (tmp_path / "nested").exists()


def test_a_few_invalid_bytes_are_counted_not_fatal(tmp_path, capsys):
    raw = bytearray(SHAKESPEARE.read_bytes()[:100_000])
    for i in range(500, len(raw), 1000):  # 100 bytes that are never valid UTF-8
        raw[i] = 0xFF
    data = tmp_path / "corrupt.txt"
    data.write_bytes(bytes(raw))
    out = tmp_path / "out"
    assert main(prepare_args(out, "--data.train_files", str(data), "--data.block_size", "64")) == 0
    assert "invalid UTF-8 sequences replaced: 100" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["steps"][0]["details"]["invalid_utf8"] == {str(data): 100}
    clean = report["steps"][1]["details"]["counts"]
    assert clean["replacement_chars_removed"] == 100
    tok = AutoTokenizer.from_pretrained(out / "tokenizer")
    text = tok.decode(pack.read_packed(out)["train"].open().reshape(-1).tolist())
    assert "\ufffd" not in text


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--data.validation_split", "1.5"], "data.validation_split must be in [0, 1)"),
        (["--data.near_dedup.threshold", "2"], "near_dedup.threshold must be in (0, 1]"),
        (["--data.clean.min_tokens", "5"], "tokenizer.name_or_path"),
        (["--data.packing", "bogus"], "invalid choice"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, expected):
    out = tmp_path / "out"
    try:
        code = main(prepare_args(out, "--data.train_files", str(SHAKESPEARE), *args))
    except SystemExit as e:  # argparse's own errors (an invalid choice) exit from the parser
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not out.exists()


# --- scaling out: shards prepared apart, then merged ------------------------------------------


def test_shards_prepared_apart_merge_into_one_dataset(tmp_path, shk_docs, tiny_tokenizer, capsys):
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    texts = [d.text for d in shk_docs[:1200]]
    shards = []
    for i, part in enumerate((texts[:600], texts[600:])):
        data = write_docs(tmp_path / f"shard-{i}.txt", part)
        args = ["--data.train_files", str(data), "--data.block_size", "64"]
        args += ["--tokenizer.name_or_path", str(tmp_path / "tok")]
        assert main(prepare_args(tmp_path / f"prepared-{i}", *args)) == 0
        shards.append(tmp_path / f"prepared-{i}")
    capsys.readouterr()

    merged = tmp_path / "merged"
    assert main(["data", "merge", str(merged), *map(str, shards)]) == 0
    assert "merged 2 shards" in capsys.readouterr().out
    parts = [json.loads((s / "manifest.json").read_text()) for s in shards]
    manifest = json.loads((merged / "manifest.json").read_text())
    for name in ("train", "validation"):
        blocks = pack.read_packed(merged)[name].open()
        pieces = [pack.read_packed(s)[name].open() for s in shards]
        assert np.array_equal(blocks, np.concatenate(pieces))
        for key in ("documents", "tokens", "blocks", "dropped_tail_tokens"):
            assert manifest["counts"][name][key] == sum(p["counts"][name][key] for p in parts)
    steps = json.loads((merged / "report.json").read_text())["steps"]
    assert steps[0]["docs_out"] == 1200
    assert (
        steps[-1]["details"]["sizes"]["validation"] == manifest["counts"]["validation"]["documents"]
    )

    other = tmp_path / "other"
    args = ["--data.train_files", str(tmp_path / "shard-0.txt"), "--data.block_size", "64"]
    assert main(prepare_args(other, *args, "--tokenizer.vocab_size", "300")) == 0
    capsys.readouterr()
    assert main(["data", "merge", str(tmp_path / "bad"), str(shards[0]), str(other)]) == 2
    assert "tokenizer_hash" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
