"""Data preparation throughput: ``llmkit data prepare`` vs the Hugging Face ``run_clm.py`` recipe.

Both turn the same raw text file (Tiny Shakespeare repeated to ``--mb`` megabytes) into packed
blocks of ``--block-size`` tokens with the same tokenizer (a byte-level BPE trained here, so
nothing is downloaded), in one invocation:

- llmkit: ``prepare_to`` with the document steps off (tokenize + pack only): documents are
  spilled to disk, tokenized in ~1 MB chunks by worker processes with the Rust tokenizer, and
  appended to a uint16 block file.
- run_clm: ``load_dataset("text")``, ``datasets.map(tokenize, batched=True, num_proc=N)``, then
  ``map(group_texts, batched=True, num_proc=N)`` with ``group_texts`` copied from the script.

Each side runs ``--repeat`` times, alternating, from a cold ``datasets`` cache; the best time
of each is compared (the machine may be shared). A last line times llmkit with every document
step on (clean, exact and near dedup, split) over the embedded corpus, which has no duplicates
(the repeated Shakespeare would be deduplicated down to one copy).

``--large GB [GB ...]`` instead writes files of those sizes and runs llmkit alone (clean,
split, tokenize, pack), sampling the memory of the process and its workers: it stays flat
while the corpus grows.

Run: ``python bench/data_throughput.py [--mb 30] [--repeat 2]`` or ``--large 0.1 0.4``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from itertools import chain
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "text" / "tinyshakespeare.txt"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=30, help="corpus size in MB")
    p.add_argument("--block-size", type=int, default=1024)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--num-proc", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=2, help="runs per side; the best counts")
    p.add_argument(
        "--large", type=float, nargs="*", default=[], help="GB sizes: bounded-memory runs instead"
    )
    p.add_argument("--workdir", default=None, help="where the corpus goes (default: a temp dir)")
    return p.parse_args()


def make_corpus(path: Path, size: int, variants: bool = False) -> None:
    """Tiny Shakespeare repeated; with ``variants`` each copy's paragraphs are numbered, so
    a large corpus is not all exact duplicates."""
    text = TEXT.read_text(encoding="utf-8")
    paragraphs = text.split("\n\n")
    with path.open("w", encoding="utf-8") as fh:
        written, copy = 0, 0
        while written < size:
            if variants:
                chunk = "\n\n".join(f"[{copy}.{i}] {p}" for i, p in enumerate(paragraphs))
            else:
                chunk = text
            fh.write(chunk + "\n\n")
            written += len(chunk.encode()) + 2
            copy += 1


def llmkit_prepare(corpus: Path, tok_dir: Path, out: Path, args, steps: bool) -> tuple[float, int]:
    from llmkit.config import DataConfig, TokenizerConfig
    from llmkit.config.steps import CleanConfig, ExactDedupConfig, NearDedupConfig
    from llmkit.data.prepare import prepare_to

    off = (
        {}
        if steps
        else dict(
            clean=CleanConfig(enabled=False),
            exact_dedup=ExactDedupConfig(enabled=False),
            near_dedup=NearDedupConfig(enabled=False),
            validation_split=0.0,
        )
    )
    data = DataConfig(
        train_files=[str(corpus)], block_size=args.block_size, num_proc=args.num_proc, **off
    )
    start = time.perf_counter()
    prepared = prepare_to(
        out, data, TokenizerConfig(name_or_path=str(tok_dir)), show_progress=False
    )
    seconds = time.perf_counter() - start
    tokens = sum(c["tokens"] for c in prepared.manifest["counts"].values())
    shutil.rmtree(out)
    return seconds, tokens


def run_clm(corpus: Path, tok_dir: Path, cache: Path, args) -> tuple[float, int]:
    """The data part of transformers' examples/pytorch/language-modeling/run_clm.py."""
    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    block_size = args.block_size
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    raw = datasets.load_dataset(
        "text", data_files={"train": str(corpus)}, cache_dir=str(cache), keep_linebreaks=True
    )

    def tokenize_function(examples):
        return tokenizer(examples["text"])

    def group_texts(examples):
        concatenated_examples = {k: list(chain(*examples[k])) for k in examples}
        total_length = len(concatenated_examples[list(examples.keys())[0]])
        total_length = (total_length // block_size) * block_size
        result = {
            k: [t[i : i + block_size] for i in range(0, total_length, block_size)]
            for k, t in concatenated_examples.items()
        }
        result["labels"] = result["input_ids"].copy()
        return result

    tokenized = raw.map(
        tokenize_function, batched=True, num_proc=args.num_proc, remove_columns=["text"]
    )
    lm_datasets = tokenized.map(group_texts, batched=True, num_proc=args.num_proc)
    seconds = time.perf_counter() - start
    assert len(lm_datasets["train"]) > 0
    lengths = tokenized["train"].map(
        lambda b: {"n": [len(x) for x in b["input_ids"]]}, batched=True, num_proc=1
    )["n"]
    shutil.rmtree(cache, ignore_errors=True)
    return seconds, int(sum(lengths))


class PeakMemory:
    """Samples the proportional set size (PSS: shared pages split between the processes that
    share them, so forked workers are not counted twice) of this process and its children."""

    def __init__(self):
        import psutil

        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = sum(p.memory_full_info().pss for p in procs)
            except Exception:  # a worker exiting while it is sampled
                continue
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    args = parse_args()
    from llmkit.data.tokenizer import train_tokenizer

    work = Path(args.workdir or tempfile.mkdtemp(prefix="llmkit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tok_dir = work / "tokenizer"
    train_tokenizer([TEXT.read_text()], args.vocab_size).save_pretrained(tok_dir)
    print(f"{os.cpu_count()} cores, num_proc {args.num_proc}, block size {args.block_size}")
    try:
        if args.large:
            large(work, tok_dir, args)
        else:
            compare(work, tok_dir, args)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def compare(work: Path, tok_dir: Path, args) -> None:
    corpus = work / "corpus.txt"
    make_corpus(corpus, int(args.mb * 1e6))
    mb = corpus.stat().st_size / 1e6
    print(f"corpus: {mb:.1f} MB (Tiny Shakespeare repeated), BPE vocab {args.vocab_size}")
    best = {"llmkit": (float("inf"), 0), "run_clm": (float("inf"), 0)}
    rounds = []  # seconds of both sides in one round: they ran under the same machine load
    for r in range(args.repeat):
        runs = {
            "llmkit": lambda: llmkit_prepare(corpus, tok_dir, work / "out", args, steps=False),
            "run_clm": lambda r=r: run_clm(corpus, tok_dir, work / f"hf-cache-{r}", args),
        }
        this_round = {}
        for name, fn in runs.items():
            seconds, tokens = fn()
            print(f"  run {r + 1} {name:8s} {seconds:6.2f} s  {tokens / seconds:>12,.0f} tok/s")
            best[name] = min(best[name], (seconds, tokens))
            this_round[name] = seconds
        rounds.append(this_round["run_clm"] / this_round["llmkit"])
    unique = ROOT / "data" / "pretrain" / "corpus.jsonl"  # no duplicates: every step does work
    steps_s, steps_tokens = llmkit_prepare(unique, tok_dir, work / "out", args, steps=True)
    unique_mb = unique.stat().st_size / 1e6
    print()
    for name, (seconds, tokens) in best.items():
        print(
            f"{name:34s} {seconds:6.2f} s  {tokens / seconds:>10,.0f} tok/s  "
            f"{mb / seconds:6.2f} MB/s"
        )
    print(
        f"llmkit with every document step on (clean, exact + near dedup, split) over "
        f"{unique.relative_to(ROOT)} ({unique_mb:.1f} MB, no duplicates): {steps_s:.2f} s, "
        f"{steps_tokens / steps_s:,.0f} tok/s, {unique_mb / steps_s:.2f} MB/s"
    )
    ratio = best["run_clm"][0] / best["llmkit"][0]
    print(
        f"\nllmkit tokenize + pack is {ratio:.2f}x faster than the run_clm recipe (best wall "
        f"time of each); per round: {', '.join(f'{x:.2f}x' for x in rounds)}, median "
        f"{float(np.median(rounds)):.2f}x"
    )


def large(work: Path, tok_dir: Path, args) -> None:
    """The same preparation on corpora of growing size: time grows, memory does not."""
    from llmkit.config import DataConfig, TokenizerConfig
    from llmkit.config.steps import ExactDedupConfig, NearDedupConfig
    from llmkit.data.prepare import prepare_to

    for size in args.large:
        corpus = work / "large.txt"
        make_corpus(corpus, int(size * 1e9), variants=True)
        data = DataConfig(
            train_files=[str(corpus)],
            block_size=args.block_size,
            num_proc=args.num_proc,
            # dedup indexes grow with the number of documents kept (exact: ~100 bytes each,
            # near: ~1 KB each); what is measured here is everything else
            exact_dedup=ExactDedupConfig(enabled=False),
            near_dedup=NearDedupConfig(enabled=False),
        )
        tokenizer = TokenizerConfig(name_or_path=str(tok_dir))
        with PeakMemory() as memory:
            start = time.perf_counter()
            prepared = prepare_to(work / "out", data, tokenizer, show_progress=False)
            seconds = time.perf_counter() - start
        tokens = sum(c["tokens"] for c in prepared.manifest["counts"].values())
        docs = prepared.report["steps"][0]["docs_out"]
        print(
            f"{corpus.stat().st_size / 1e9:.2f} GB, {docs:,} documents, {tokens:,} tokens: "
            f"{seconds:,.0f} s ({tokens / seconds:,.0f} tok/s), clean + split + tokenize + "
            f"pack; peak memory (PSS) of llmkit and its workers {memory.peak / 1e9:.2f} GB",
            flush=True,
        )
        shutil.rmtree(work / "out")
        corpus.unlink()


if __name__ == "__main__":
    main()
