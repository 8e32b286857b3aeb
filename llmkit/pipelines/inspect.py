"""`llmkit inspect attention|heads`: what a model attends to, and which heads copy.

attention: take a text (``--text``, ``--file`` or a task example), run it through the model
(and ``--compare`` model) with eager attention, draw every head and the heads asked for, and
write a self-contained page to explore them. heads: score every head on repeated random
tokens (previous-token, induction, entropy) and the model's in-context copying.
Everything is checked before anything is written; files appear in ``--output_dir`` at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmkit.errors import LlmkitError
from llmkit.inspect import plots
from llmkit.inspect.attention import (
    Inspected,
    capture,
    check_selection,
    encode_text,
    load_model,
    token_labels,
)
from llmkit.inspect.heads import head_scores, sequence_length
from llmkit.inspect.page import write_page

MARKER = "inspect.json"  # what --overwrite may replace


# --- llmkit inspect attention ----------------------------------------------------------------


@dataclass
class AttentionResult:
    output_dir: Path
    tokens: list[str]
    attention: np.ndarray  # (layers, heads, q, k) of --model
    other: np.ndarray | None  # the same for --compare
    files: list[str]


def attention(args: argparse.Namespace) -> AttentionResult:
    text, source = read_text(args)
    out = check_output(args.output_dir, args.overwrite)
    a = load_model(args.model, args.trust_remote_code)
    b = load_model(args.compare, args.trust_remote_code) if args.compare else None
    ids = encode_text(a, text)
    check_pair(a, b, ids, text)
    layers, heads = args.layer or [], args.head or []
    check_selection(a, layers, heads)
    check_size(a, len(ids))

    labels = token_labels(a.tokenizer, ids)
    import torch

    att_a = capture(a.model, torch.tensor([ids]))[0].numpy()
    att_b = capture(b.model, torch.tensor([ids]))[0].numpy() if b else None

    def write(tmp: Path) -> list[str]:
        name_a = short(args.model)
        plots.attention_grid(att_a, labels, tmp / "attention.png", f"attention of {name_a}")
        files = ["attention.png"]
        if b is not None:
            name_b = short(args.compare)
            plots.attention_grid(att_b, labels, tmp / "attention_B.png", f"attention of {name_b}")
            plots.attention_grid(
                att_b - att_a,
                labels,
                tmp / "attention_diff.png",
                f"difference: {name_b} (B) - {name_a} (A)",
                diff=True,
            )
            files += ["attention_B.png", "attention_diff.png"]
        for li, hi in selected_heads(a, layers, heads):
            maps = [(f"A: {name_a}" if b else name_a, att_a[li, hi], False)]
            if b is not None:
                maps += [
                    (f"B: {short(args.compare)}", att_b[li, hi], False),
                    ("B - A", att_b[li, hi] - att_a[li, hi], True),
                ]
            name = f"attention_L{li}_H{hi}.png"
            plots.attention_map(maps, labels, tmp / name, f"layer {li}, head {hi}")
            files.append(name)
        views = {"A": (name_a, att_a)} | ({"B": (short(args.compare), att_b)} if b else {})
        write_page(
            tmp / "attention.html",
            labels,
            views,
            f"attention of {name_a}" + (f" vs {short(args.compare)}" if b else ""),
        )
        files.append("attention.html")
        summary = {
            "command": "attention",
            "model": args.model,
            "compare": args.compare,
            "source": source,
            "tokens": len(ids),
            "layers": a.layers,
            "heads": a.heads,
            "files": files,
        }
        (tmp / MARKER).write_text(json.dumps(summary, indent=2) + "\n")
        return files

    files = publish(out, args.overwrite, write)
    print(
        f"{len(ids)} tokens ({source}) through {a.layers} layers x {a.heads} heads"
        + (f", compared with {args.compare}" if b else "")
        + f"\nwrote {', '.join(files)}\nsaved to: {out}"
    )
    return AttentionResult(out, labels, att_a, att_b, files)


def read_text(args: argparse.Namespace) -> tuple[str, str]:
    """The text to inspect and where it came from (exactly one source)."""
    given = [f for f in ("text", "file", "task") if getattr(args, f) is not None]
    if len(given) != 1:
        raise LlmkitError("give exactly one of --text, --file or --task (with --data)")
    if args.text is not None:
        return args.text, "--text"
    if args.file is not None:
        path = Path(args.file)
        if not path.is_file():
            raise LlmkitError(f"--file {path}: no such file; give a text file")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError:
            raise LlmkitError(f"--file {path}: not UTF-8 text") from None
    return task_prompt(args)


def task_prompt(args: argparse.Namespace) -> tuple[str, str]:
    from llmkit.tasks import get_task
    from llmkit.tasks.data import load_task_records

    if not args.data:
        raise LlmkitError(f"--task {args.task} needs --data: the task's files or a Hub dataset")
    task = get_task(args.task)
    records = load_task_records(task, [args.data], args.split)
    if not 0 <= args.index < len(records):
        raise LlmkitError(
            f"--index {args.index} is out of range: the {args.split} split of {args.data} has "
            f"{len(records)} records (0-{len(records) - 1})"
        )
    task.learn_from(records)
    return task.prompt(records[args.index]), f"{args.task} {args.split} example {args.index}"


def check_pair(a: Inspected, b: Inspected | None, ids: list[int], text: str) -> None:
    """A difference map needs the same tokens and the same layer x head grid."""
    if b is None:
        return
    if b.tokenizer(text)["input_ids"] != ids:
        raise LlmkitError(
            f"--compare {b.name_or_path} tokenizes the text differently from --model "
            f"{a.name_or_path}; compare models that share a tokenizer (base vs fine-tuned)"
        )
    if (a.layers, a.heads) != (b.layers, b.heads):
        raise LlmkitError(
            f"--compare {b.name_or_path} has {b.layers} layers x {b.heads} heads, --model "
            f"{a.layers} x {a.heads}; a difference map needs the same shape"
        )


#: attention weights the page may hold (about 6 bytes each as JSON)
MAX_WEIGHTS = 8_000_000


def check_size(a: Inspected, tokens: int) -> None:
    """Every head's full map goes into the page; keep it loadable in a browser."""
    weights = a.layers * a.heads * tokens * tokens
    if weights > MAX_WEIGHTS:
        fits = int((MAX_WEIGHTS / (a.layers * a.heads)) ** 0.5)
        raise LlmkitError(
            f"the text is {tokens} tokens: {a.layers} x {a.heads} maps of {tokens} x {tokens} "
            f"weights are too many for one page; shorten it to about {fits} tokens"
        )


def selected_heads(a: Inspected, layers: list[int], heads: list[int]) -> list[tuple[int, int]]:
    """Large maps: every given --layer x every given --head (all of one when only the other
    is given); none when neither is."""
    if not layers and not heads:
        return []
    return [(li, hi) for li in layers or range(a.layers) for hi in heads or range(a.heads)]


def short(name: str) -> str:
    return Path(name).name or name


# --- llmkit inspect heads ----------------------------------------------------------------------


def heads(args: argparse.Namespace) -> dict:
    out = check_output(args.output_dir, args.overwrite)
    if args.seq_len < 2 or args.batch < 1:
        raise LlmkitError("--seq_len must be >= 2 and --batch >= 1")
    m = load_model(args.model, args.trust_remote_code)
    length = sequence_length(m.positions, args.seq_len)
    scores = head_scores(m.model, m.tokenizer, length=length, batch=args.batch, seed=args.seed)
    scores["model"] = args.model

    def write(tmp: Path) -> list[str]:
        (tmp / "heads.json").write_text(json.dumps(scores, indent=2) + "\n")
        plots.heads_heatmap(scores, tmp / "heads.png", heads_title(scores))
        (tmp / MARKER).write_text(
            json.dumps(
                {"command": "heads", "model": args.model, "files": ["heads.json", "heads.png"]},
                indent=2,
            )
            + "\n"
        )
        return ["heads.json", "heads.png"]

    publish(out, args.overwrite, write)
    print(heads_table(scores) + f"\nsaved to: {out}")
    return scores


def heads_title(s: dict) -> str:
    seq = s["sequence"]
    return (
        f"{short(s['model'])}: {seq['batch']} random sequences of {seq['length']} tokens, "
        f"repeated; copy score {s['copy_score']:.2f} nats"
    )


def heads_table(s: dict) -> str:
    """One row per head, the strongest induction heads first."""
    rows = [
        (li, hi, s["previous_token"][li][hi], s["induction"][li][hi], s["entropy"][li][hi])
        for li in range(s["layers"])
        for hi in range(s["heads"])
    ]
    rows.sort(key=lambda r: -r[3])
    lines = [f"{'layer':>5} {'head':>4} {'prev-token':>10} {'induction':>9} {'entropy':>7}"]
    lines += [f"{li:>5} {hi:>4} {p:>10.3f} {i:>9.3f} {e:>7.2f}" for li, hi, p, i, e in rows]
    seq = s["sequence"]
    lines.append(
        f"copying ({seq['batch']} x {seq['length']} random tokens, repeated): loss "
        f"{s['copy_loss_first']:.3f} on the first copy, {s['copy_loss_second']:.3f} on the "
        f"second; copy score {s['copy_score']:.3f} nats (0: no copying)"
    )
    return "\n".join(lines)


# --- output folder ---------------------------------------------------------------------------


def check_output(path: str, overwrite: bool) -> Path:
    """Refuse before any work to clobber a folder we did not write."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise LlmkitError(f"--output_dir {out} is a file; choose a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise LlmkitError(
                f"--output_dir {out} is not empty; pass --overwrite to replace an earlier "
                "inspection or choose another folder"
            )
        if not (out / MARKER).is_file():
            raise LlmkitError(
                f"--output_dir {out} holds no `llmkit inspect` output ({MARKER}); refusing to "
                "delete it even with --overwrite; choose another folder"
            )
    return out


def publish(out: Path, overwrite: bool, write) -> list[str]:
    """Write into a sibling temp folder, then rename it into place: all files or none."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        files = write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


def from_args(args: argparse.Namespace):
    return {"attention": attention, "heads": heads}[args.what](args)
