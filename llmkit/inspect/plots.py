"""Heatmaps of attention and head scores (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: above this many tokens a grid cell is pooled into this many bins per axis
GRID_BINS = 64
#: token labels on a large map up to this many tokens (beyond, every n-th)
LABELS_MAX = 48


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def downsample(att: np.ndarray, bins: int) -> np.ndarray:
    """A ``(q, k)`` map pooled to at most ``bins`` x ``bins``: attention mass summed over each
    key bin, averaged over each query bin, so rows still sum to 1 and sharp heads stay
    visible (plain resizing would blur a one-token diagonal away)."""
    n = att.shape[-1]
    if n <= bins:
        return att
    edges = np.linspace(0, n, bins + 1).round().astype(int)
    keys = np.add.reduceat(att, edges[:-1], axis=-1)
    counts = np.diff(edges)
    return np.add.reduceat(keys, edges[:-1], axis=-2) / counts[:, None]


def _show(ax, att, labels, title, *, diff=False, vmax=None, ticks=True):
    n = att.shape[-1]
    if diff:
        lim = vmax or max(float(np.abs(att).max()), 1e-6)
        im = ax.imshow(att, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    else:
        im = ax.imshow(att, cmap="viridis", vmin=0, vmax=vmax or 1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    if ticks and labels is not None and len(labels) == n:
        step = max(1, -(-n // LABELS_MAX))
        pos = list(range(0, n, step))
        ax.set_xticks(pos, [labels[i] for i in pos], rotation=90, fontsize=7)
        ax.set_yticks(pos, [labels[i] for i in pos], fontsize=7)
        ax.set_xlabel("key (attended to)", fontsize=8)
        ax.set_ylabel("query", fontsize=8)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    return im


def attention_grid(att: np.ndarray, labels: list[str], out: Path, title: str, diff=False):
    """``(layers, heads, q, k)``: one small map per head, layers as rows."""
    plt = _pyplot()
    layers, heads, n = att.shape[0], att.shape[1], att.shape[-1]
    size = 1.9 if n <= GRID_BINS else 2.3
    fig, axes = plt.subplots(
        layers, heads, figsize=(size * heads + 1, size * layers + 0.9), squeeze=False, dpi=110
    )
    vmax = float(np.abs(att).max()) if diff else 1.0
    small = n <= 16
    for li in range(layers):
        for hi in range(heads):
            m = downsample(att[li, hi], GRID_BINS)  # linear: also right for a difference
            im = _show(
                axes[li, hi],
                m,
                labels if small else None,
                f"L{li} H{hi}",
                diff=diff,
                vmax=vmax,
                ticks=small,
            )
    note = "" if n <= GRID_BINS else f" (pooled to {GRID_BINS}x{GRID_BINS} of {n} tokens)"
    fig.suptitle(title + note, fontsize=11)
    fig.colorbar(im, ax=axes, shrink=0.6, label="B - A" if diff else "attention weight")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def attention_map(maps: list[tuple[str, np.ndarray, bool]], labels: list[str], out: Path, title):
    """One large map, or several side by side (model A, model B, difference)."""
    plt = _pyplot()
    n = maps[0][1].shape[-1]
    side = min(11.0, max(4.5, 0.22 * n))
    fig, axes = plt.subplots(
        1, len(maps), figsize=(side * len(maps) + 1, side + 1), dpi=110, layout="constrained"
    )
    axes = np.atleast_1d(axes)
    for ax, (name, m, diff) in zip(axes, maps, strict=True):
        pooled = n > 4 * LABELS_MAX
        im = _show(
            ax,
            downsample(m, 4 * LABELS_MAX) if pooled else m,
            labels,
            name,
            diff=diff,
            ticks=not pooled,
        )
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.suptitle(title, fontsize=12)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out


def heads_heatmap(scores: dict, out: Path, title: str):
    """Previous-token, induction and entropy per (layer, head), values written in the cells."""
    plt = _pyplot()
    panels = [
        ("previous-token score", np.array(scores["previous_token"]), 1.0, "viridis"),
        ("induction score", np.array(scores["induction"]), 1.0, "viridis"),
        ("attention entropy (nats)", np.array(scores["entropy"]), scores["max_entropy"], "magma_r"),
    ]
    layers, heads = panels[0][1].shape
    fig, axes = plt.subplots(
        1, 3, figsize=(3 * (0.7 * heads + 1.8), 0.55 * layers + 1.8), dpi=110, squeeze=False
    )
    for ax, (name, m, vmax, cmap) in zip(axes[0], panels, strict=True):
        im = ax.imshow(m, cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(name, fontsize=9)
        ax.set_xticks(range(heads))
        ax.set_yticks(range(layers))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        if layers * heads <= 256:
            for (li, hi), v in np.ndenumerate(m):
                dark = (v / vmax > 0.55) if cmap == "viridis" else (v / vmax < 0.45)
                ax.text(
                    hi,
                    li,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="black" if dark else "white",
                )
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)
    return out
