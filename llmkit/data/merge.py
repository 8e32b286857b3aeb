"""Merge folders prepared separately (one shard of a corpus each) into one dataset.

Each shard is prepared on its own worker with the same settings and the same tokenizer
(``tokenizer.name_or_path``); because the split is a per-document hash, a document lands in
the same split whichever shard holds it. Merging concatenates the block files split by split
and adds up the counts and the step reports; nothing is re-tokenized.
"""

from __future__ import annotations

import argparse
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from llmkit.config import CONFIG_FILE
from llmkit.data import pack
from llmkit.data.prepare import PreparedData, load_prepared, staging
from llmkit.data.report import load_report, save_report
from llmkit.errors import DataError

MUST_MATCH = ("format", "block_size", "packing", "remainder", "tokenizer_hash")


def merge_prepared(shards: list[Path], out: Path) -> PreparedData:
    """Concatenate the splits of ``shards`` (in order) into ``out``, written atomically."""
    if not shards:
        raise DataError("data merge: no shard folders given")
    manifests = []
    for shard in shards:
        if not pack.is_complete(shard):
            raise DataError(f"data merge: {shard} is not a `llmkit data prepare` folder")
        manifests.append(pack.read_manifest(shard))
    first = manifests[0]
    for shard, m in zip(shards[1:], manifests[1:]):
        for key in MUST_MATCH:
            if m.get(key) != first.get(key):
                raise DataError(
                    f"data merge: {shard} has {key} {m.get(key)!r} but {shards[0]} has "
                    f"{first.get(key)!r}; prepare every shard with the same settings and tokenizer"
                )
    names = list(dict.fromkeys(name for m in manifests for name in m["splits"]))
    with staging(out) as tmp:
        counts: dict[str, Counter] = {name: Counter() for name in names}
        for name in names:
            files = [
                (f"{name}.bin", True),
                (f"{name}.lengths.bin", first["splits"][name]["lengths"]),
            ]
            for filename, wanted in files:
                if not wanted:
                    continue
                with (tmp / filename).open("wb") as target:
                    for shard in shards:
                        if (shard / filename).exists():
                            with (shard / filename).open("rb") as source:
                                shutil.copyfileobj(source, target, 1 << 24)
            for m in manifests:
                counts[name].update(m["counts"].get(name, {}))
        shutil.copytree(shards[0] / "tokenizer", tmp / "tokenizer")
        if (shards[0] / CONFIG_FILE).exists():  # the settings every shard shares
            shutil.copy(shards[0] / CONFIG_FILE, tmp / CONFIG_FILE)
        manifest = {
            **first,
            "sources": {k: v for m in manifests for k, v in m["sources"].items()},
            "data_fingerprint": "merged:" + ",".join(m["data_fingerprint"] for m in manifests),
            "shards": [str(s) for s in shards],
            "counts": {name: dict(c) for name, c in counts.items()},
            "splits": {
                name: {**first["splits"][name], "num_blocks": counts[name]["blocks"]}
                for name in names
            },
        }
        pack.write_manifest(tmp, manifest)
        reports = [r for r in (load_report(s) for s in shards) if r]
        if reports:
            save_report(tmp, merge_reports(reports, manifest["counts"]))
    return load_prepared(out, cached=False)


COUNTS = ("docs_in", "docs_out", "chars_in", "chars_out")
SAME_IN_EVERY_SHARD = {"fractions", "eval_texts", "eval_texts_too_short", "eval_sources", "lines"}


def merge_reports(reports: list[dict], counts: dict[str, dict]) -> dict:
    """Step counts added up; per-document details (clusters, matches) kept from every shard."""
    steps = []
    for parts in zip(*(r["steps"] for r in reports)):
        step = {**parts[0], **dict.fromkeys(COUNTS, 0), "removed": Counter(), "examples": {}}
        step["details"] = {}
        for part in parts:
            for key in COUNTS:
                step[key] += part[key]
            step["removed"].update(part["removed"])
            for reason, ids in part["examples"].items():
                step["examples"][reason] = (step["examples"].get(reason, []) + ids)[:5]
            for key, value in part["details"].items():
                if key in SAME_IN_EVERY_SHARD:
                    step["details"].setdefault(key, value)
                else:
                    step["details"][key] = _combine(step["details"].get(key), value)
        step["removed"] = dict(step["removed"])
        steps.append(step)
    return {**reports[0], "steps": steps, "splits": counts, "shards": len(reports)}


def _combine(a: Any, b: Any) -> Any:
    """Numbers add up, lists concatenate, mappings merge key by key."""
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **{k: _combine(a.get(k), v) for k, v in b.items()}}
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return a


def from_args(args: argparse.Namespace) -> PreparedData:
    """``llmkit data merge OUT SHARD...``."""
    from llmkit.data.report import format_report
    from llmkit.outputs import check_output_dir

    out = check_output_dir(args.out, args.overwrite, resuming=False)
    merged = merge_prepared([Path(s) for s in args.shards], out)
    if merged.report:
        print(format_report(merged.report))
    print(f"\nmerged {len(args.shards)} shards into {out}")
    return merged
