"""`llmkit data inspect PATH`: what is in a prepared dataset or in raw data files.

For a folder written by ``llmkit data prepare``: blocks and tokens per split, the token length
of the documents (histogram PNG), decoded sample blocks, duplicate blocks and what the
preparation removed. For raw files (or folders, globs): records, characters (and tokens with
``--tokenizer``), the length histogram, sample documents and the exact and near duplicates the
``data prepare`` steps would remove. Nothing is modified but the PNG written.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llmkit.data import pack
from llmkit.data.dedup import exact_dedup, near_dedup
from llmkit.data.documents import Doc, StepReport
from llmkit.data.read import read_documents
from llmkit.data.report import load_report
from llmkit.data.sources import resolve_files
from llmkit.data.split import SPLITS
from llmkit.errors import LlmkitError


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    summary = inspect_path(
        args.path,
        text_column=args.text_column,
        samples=args.samples,
        plot=args.plot,
        tokenizer=args.tokenizer,
        seed=args.seed,
    )
    print(summary["text"])
    return summary


def inspect_path(
    path: str,
    *,
    text_column: str = "text",
    samples: int = 3,
    plot: str | None = None,
    tokenizer: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """A summary dict (``text`` holds the printed form) of a prepared dataset or raw data."""
    folder = Path(path)
    if folder.is_dir() and pack.is_complete(folder):
        plot_path = Path(plot) if plot else folder / "lengths.png"
        return inspect_prepared(folder, samples, plot_path, seed)
    files = resolve_files([path], "inspect PATH")
    plot_path = (
        Path(plot) if plot else Path(f"{Path(path.rstrip('/*')).stem or 'data'}.lengths.png")
    )
    return inspect_raw(files, text_column, samples, plot_path, tokenizer, seed)


# ---------------------------------------------------------------------------------------------
# A prepared dataset


def inspect_prepared(folder: Path, samples: int, plot: Path, seed: int) -> dict[str, Any]:
    from llmkit.data.tokenizer import load_tokenizer

    manifest = pack.read_manifest(folder)
    splits = pack.read_packed(folder)
    tokenizer = load_tokenizer(str(folder / "tokenizer"))
    eos = manifest.get("eos_token_id", tokenizer.eos_token_id)
    lines = [
        f"{folder}: {manifest['packing']} packing, blocks of {manifest['block_size']} tokens, "
        f"tokenizer {manifest['tokenizer']} (vocab {manifest.get('vocab_size', len(tokenizer))})"
    ]
    per_split, lengths = {}, {}
    for name in [s for s in SPLITS if s in splits] + [s for s in splits if s not in SPLITS]:
        split = splits[name]
        blocks = split.open()
        valid = split.lengths()
        tokens = int(valid.sum()) if valid is not None else blocks.size
        doc_lengths = document_lengths(blocks, valid, eos)
        lengths[name] = doc_lengths
        per_split[name] = {
            "blocks": split.num_blocks,
            "tokens": tokens,
            "documents": manifest["counts"][name]["documents"],
            "duplicate_blocks": duplicate_blocks(blocks, valid),
        }
        s = per_split[name]
        lines.append(
            f"  {name:<10} {s['blocks']:>10,} blocks {s['tokens']:>13,} tokens "
            f"{s['documents']:>10,} documents  {s['duplicate_blocks']:,} duplicate full blocks"
        )
    all_lengths = np.concatenate([v for v in lengths.values() if len(v)] or [np.zeros(0)])
    lines.append(describe_lengths(all_lengths, "tokens"))
    report = load_report(folder)
    if report:
        removed = {
            s["name"]: s["removed"] for s in report["steps"] if s["removed"] and s["enabled"]
        }
        lines.append(
            "removed when prepared: "
            + (
                "; ".join(
                    f"{step} " + ", ".join(f"{k}={v:,}" for k, v in reasons.items())
                    for step, reasons in removed.items()
                )
                or "nothing"
            )
        )
    train = splits.get("train")
    shown = []
    if train is not None and train.num_blocks and samples:
        rng = random.Random(seed)
        blocks = train.open()
        for i in sorted(rng.sample(range(train.num_blocks), min(samples, train.num_blocks))):
            shown.append((i, tokenizer.decode(blocks[i][:200].tolist())))
        lines.append("samples (train blocks, first 200 tokens):")
        lines += [f"  [{i}] {text[:300]!r}" for i, text in shown]
    plot_histogram(all_lengths, plot, "document length (tokens)", folder.name)
    lines.append(f"length histogram: {plot}")
    return {
        "kind": "prepared",
        "splits": per_split,
        "document_lengths": all_lengths,
        "samples": shown,
        "plot": plot,
        "text": "\n".join(lines),
    }


def document_lengths(blocks: np.ndarray, valid: np.ndarray | None, eos: int) -> np.ndarray:
    """Token count of each complete document (EOS included), read block by block.

    Padding is skipped using the per-block lengths; a document cut by the end of the split (or
    by a dropped remainder) is not counted.
    """
    ends: list[np.ndarray] = []
    offset = 0
    step = max(1, (1 << 22) // max(1, blocks.shape[1]))
    for start in range(0, len(blocks), step):
        part = np.asarray(blocks[start : start + step])
        if valid is not None:
            mask = np.arange(part.shape[1]) < valid[start : start + step, None]
            flat = part[mask]
        else:
            flat = part.reshape(-1)
        ends.append(np.flatnonzero(flat == eos) + offset)
        offset += len(flat)
    positions = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)
    return np.diff(np.concatenate([[-1], positions])) if len(positions) else positions


def duplicate_blocks(blocks: np.ndarray, valid: np.ndarray | None = None) -> int:
    """Full blocks identical to an earlier block, by a 64-bit hash of each row.

    Padded blocks (a document's last, partial block) are left out: many documents end alike.
    """
    if len(blocks) == 0:
        return 0
    rng = np.random.default_rng(0)
    weights = rng.integers(1, 2**63, size=blocks.shape[1], dtype=np.uint64) | np.uint64(1)
    hashes = []
    step = max(1, (1 << 22) // blocks.shape[1])
    with np.errstate(over="ignore"):
        for start in range(0, len(blocks), step):
            part = np.asarray(blocks[start : start + step]).astype(np.uint64)
            if valid is not None:
                part = part[valid[start : start + step] == blocks.shape[1]]
            hashes.append((part * weights).sum(axis=1) ^ (part[:, :8] * weights[:8]).sum(axis=1))
    _, counts = np.unique(np.concatenate(hashes), return_counts=True)
    return int((counts - 1).sum())


# ---------------------------------------------------------------------------------------------
# Raw data files


def inspect_raw(
    files: list[Path],
    text_column: str,
    samples: int,
    plot: Path,
    tokenizer_name: str | None,
    seed: int,
) -> dict[str, Any]:
    from llmkit.config.steps import ExactDedupConfig, NearDedupConfig

    count = None
    if tokenizer_name:
        from llmkit.data.tokenizer import load_tokenizer

        backend = load_tokenizer(tokenizer_name).backend_tokenizer
        count = lambda text: len(backend.encode(text, add_special_tokens=False).ids)  # noqa: E731
    read = StepReport("read")
    unit = "tokens" if count else "characters"
    lengths: list[int] = []
    chosen: list[Doc] = []
    rng = random.Random(seed)

    def observed() -> Iterator[Doc]:  # every document passes here on its way to the dedup steps
        for f in files:
            for doc in read_documents(f, text_column, read):
                lengths.append(count(doc.text) if count else len(doc.text))
                # reservoir sampling: a uniform sample in one pass, whatever the size
                if len(chosen) < samples:
                    chosen.append(doc)
                elif samples and (j := rng.randrange(read.docs_out)) < samples:
                    chosen[j] = doc
                yield doc

    exact, near = StepReport("exact_dedup"), StepReport("near_dedup")
    for _ in near_dedup(
        exact_dedup(observed(), ExactDedupConfig(), exact), NearDedupConfig(), near
    ):
        pass
    values = np.asarray(lengths)
    invalid = sum(read.details.get("invalid_utf8", {}).values())
    lines = [
        f"{', '.join(map(str, files[:3]))}{' ...' if len(files) > 3 else ''}: "
        f"{read.docs_in:,} records, {read.docs_out:,} documents "
        f"({read.removed.get('blank', 0):,} blank), {int(values.sum()):,} {unit}"
        + (f", {invalid:,} invalid UTF-8 sequences" if invalid else ""),
        describe_lengths(values, unit),
        f"exact duplicates: {exact.docs_removed:,} in {len(exact.details['clusters']):,} clusters;"
        f" near duplicates (MinHash, Jaccard >= 0.8): {near.docs_removed:,} in "
        f"{len(near.details['clusters']):,} clusters",
    ]
    for report in (exact, near):
        for kept, removed in list(report.details["clusters"].items())[:3]:
            lines.append(f"  {report.name}: {kept} ~ {', '.join(removed[:3])}")
    if chosen:
        lines.append("samples:")
        lines += [f"  [{d.id}] {d.text[:300]!r}" for d in chosen]
    plot_histogram(values, plot, f"document length ({unit})", ", ".join(f.name for f in files[:2]))
    lines.append(f"length histogram: {plot}")
    return {
        "kind": "raw",
        "documents": read.docs_out,
        "records": read.docs_in,
        "lengths": values,
        "exact_duplicates": exact.docs_removed,
        "near_duplicates": near.docs_removed,
        "clusters": {**exact.details["clusters"], **near.details["clusters"]},
        "samples": [d.id for d in chosen],
        "invalid_utf8": invalid,
        "plot": plot,
        "text": "\n".join(lines),
    }


def describe_lengths(values: np.ndarray, unit: str) -> str:
    if len(values) == 0:
        return f"lengths ({unit}): no complete documents"
    p = np.percentile(values, [50, 90, 99])
    return (
        f"lengths ({unit}): mean {values.mean():,.1f}, median {p[0]:,.0f}, p90 {p[1]:,.0f}, "
        f"p99 {p[2]:,.0f}, max {values.max():,}"
    )


def plot_histogram(values: np.ndarray, path: Path, xlabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if path.parent and not path.parent.exists():
        raise LlmkitError(f"--plot {path}: folder {path.parent} does not exist; create it first")
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(values):
        high = max(1, int(np.percentile(values, 99.5)))
        ax.hist(np.minimum(values, high), bins=min(60, high), color="#4477aa")
    ax.set_xlabel(xlabel + " (clipped at the 99.5th percentile)")
    ax.set_ylabel("documents")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
