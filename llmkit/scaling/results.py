"""What a finished point's run folder says: final validation loss, tokens, wall time."""

from __future__ import annotations

import json
from pathlib import Path

from llmkit.config.schema import CONFIG_FILE
from llmkit.training.logging import METRICS_FILE, read_metrics

POINT_FILE = "scaling_point.json"  # written by the sweep beside the run once it finished


def read_point(folder: Path, steps: int) -> dict | None:
    """The measurements of a finished run, or None when it has not finished."""
    if not (folder / CONFIG_FILE).exists() or not (folder / METRICS_FILE).exists():
        return None
    if not any(folder.glob("*.safetensors")):
        return None
    records = read_metrics(folder / METRICS_FILE)
    final = [r for r in records if r.get("step") == steps and "val_loss" in r]
    if not final:
        return None
    train = [r for r in records if "tokens_per_s" in r]
    tokens = max((r["tokens_seen"] for r in train), default=0)
    # Training seconds: each logged window's tokens over its measured rate.
    seconds, seen = 0.0, 0
    for r in train:
        seconds += (r["tokens_seen"] - seen) / max(r["tokens_per_s"], 1e-9)
        seen = r["tokens_seen"]
    extra = json.loads((folder / POINT_FILE).read_text()) if (folder / POINT_FILE).exists() else {}
    return {
        "val_loss": float(final[-1]["val_loss"]),
        "tokens_seen": int(tokens),
        "train_seconds": seconds,
        "tokens_per_s": tokens / seconds if seconds else None,
        "wall_seconds": extra.get("wall_seconds"),
    }


def write_point(folder: Path, wall_seconds: float) -> None:
    tmp = folder / (POINT_FILE + ".tmp")
    tmp.write_text(json.dumps({"wall_seconds": wall_seconds}))
    tmp.replace(folder / POINT_FILE)
