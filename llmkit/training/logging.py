"""Where training metrics go: metrics.jsonl, TensorBoard and the loss.png plot."""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Append-only JSON lines (one record per log event), mirrored to TensorBoard."""

    def __init__(self, output_dir: Path, tensorboard: bool, resume_step: int | None = None):
        self.path = output_dir / METRICS_FILE
        if resume_step is None:
            self.path.write_text("")
        else:
            self._truncate_after(resume_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output_dir / "tensorboard"))

    def _truncate_after(self, step: int) -> None:
        """Drop records a resumed run will write again."""
        kept = (
            [r for r in read_metrics(self.path) if r["step"] <= step] if self.path.exists() else []
        )
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def log(self, record: dict) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(metrics_path: Path, out_png: Path, title: str = "") -> Path:
    """Train loss per logged step and validation loss per evaluation, on one chart; the
    in-context copy score (when logged) on a second axis, to show when a model starts to copy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["train_loss"]) for r in records if "train_loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if train:
        ax.plot(*zip(*train), label="train loss", color="tab:blue", linewidth=1.2)
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss", color="tab:orange", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title or "training loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    copy = [(r["step"], r["copy_score"]) for r in records if "copy_score" in r]
    if copy:
        right = ax.twinx()
        right.plot(*zip(*copy), "s--", color="tab:green", linewidth=1.3, markersize=4)
        right.set_ylabel("copy score (nats: loss on 1st - 2nd copy)", color="tab:green")
        right.tick_params(axis="y", labelcolor="tab:green")
        handles += right.get_lines()
        labels += ["copy score (right axis)"]
    ax.legend(handles, labels)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
