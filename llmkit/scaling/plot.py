"""scaling.png: loss against N and against compute, with the fitted law and its extrapolation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmkit.scaling.fit import Fit, IsoFlopFit, optimal_allocation

EXTRAPOLATE = 10.0  # curves continue this factor past the largest point (dashed)


def _frontier(fit: Fit, flops: np.ndarray) -> np.ndarray:
    """The lowest loss reachable at each compute: Approach 3 at its optimal N and D."""
    pairs = [optimal_allocation(c, fit.params) for c in flops]
    return np.array([fit.predict(n, d) for n, d in pairs])


def plot_scaling(
    points: list[dict],
    fit: Fit,
    out_png: Path,
    *,
    isoflop: IsoFlopFit | None = None,
    held_out: list[float] = (),
    holdout_fit: Fit | None = None,
    title: str = "",
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([p["n"] for p in points], float)
    d = np.array([p["tokens_seen"] for p in points], float)
    c = 6 * n * d
    loss = np.array([p["val_loss"] for p in points], float)
    held = np.isin(n, held_out)
    panels = 3 if isoflop is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.3), dpi=110)
    cmap = plt.get_cmap("viridis")

    # Loss against N: one colour per token budget (or IsoFLOP budget), the law through each.
    ax = axes[0]
    groups = sorted({(p["flops_budget"] or 0, p["tokens"]) for p in points})
    keys = sorted({g[0] for g in groups}) if isoflop is not None else sorted({g[1] for g in groups})
    n_seen = np.geomspace(n.min(), n.max(), 100)
    n_far = np.geomspace(n.max(), n.max() * EXTRAPOLATE, 40)
    n_all = np.geomspace(n.min(), n.max() * EXTRAPOLATE, 120)
    for i, key in enumerate(keys):
        color = cmap(i / max(1, len(keys) - 1))
        if isoflop is not None:
            sel = np.array([(p["flops_budget"] or 0) == key for p in points])
            label = f"C = {key:.1e}"
        else:
            sel = np.array([p["tokens"] == key for p in points])
            label = f"D = {key:,.0f}"
        ax.scatter(n[sel & ~held], loss[sel & ~held], color=color, label=label, zorder=3)
        ax.scatter(n[sel & held], loss[sel & held], edgecolor=color, facecolor="none", zorder=3)
        if fit.law == "approach3" and isoflop is None:
            dd = float(np.median(d[sel]))
            ax.plot(n_seen, fit.predict(n_seen, dd), color=color, lw=1.2)
            ax.plot(n_far, fit.predict(n_far, dd), color=color, lw=1.2, ls="--")
            if holdout_fit is not None:
                ax.plot(n_all, holdout_fit.predict(n_all, dd), color=color, lw=1, ls=":")
    if fit.law == "size":
        ax.plot(n_seen, fit.predict(n_seen), color="black", lw=1.2, label=_law_label(fit))
        ax.plot(n_far, fit.predict(n_far), color="black", lw=1.2, ls="--", label="extrapolation")
        if holdout_fit is not None:
            ax.plot(
                n_all,
                holdout_fit.predict(n_all),
                color="tab:red",
                lw=1,
                ls=":",
                label="fit without the held-out size(s)",
            )
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.set_title("loss vs N (hollow: held out)" if held.any() else "loss vs N")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)

    # Loss against compute: the points and, for a law in N and D, its compute-optimal frontier.
    ax = axes[1]
    ax.scatter(c[~held], loss[~held], c=np.log(n[~held]), cmap="plasma", zorder=3)
    ax.scatter(c[held], loss[held], edgecolor="tab:red", facecolor="none", zorder=3)
    if fit.law == "approach3":
        c_seen = np.geomspace(c.min(), c.max(), 100)
        c_far = np.geomspace(c.max(), c.max() * EXTRAPOLATE**2, 40)
        ax.plot(c_seen, _frontier(fit, c_seen), color="black", lw=1.2, label="compute-optimal")
        ax.plot(c_far, _frontier(fit, c_far), color="black", lw=1.2, ls="--", label="extrapolation")
        ax.legend(fontsize=7)
    else:
        ax.plot(c, fit.predict(n), color="black", lw=1.0, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("compute C = 6ND (FLOPs)")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.set_title("loss vs compute (colour: log N)")
    ax.grid(alpha=0.3, which="both")

    if isoflop is not None:
        ax = axes[2]
        for i, prof in enumerate(isoflop.profiles):
            color = cmap(i / max(1, len(isoflop.profiles) - 1))
            sel = np.array([(p["flops_budget"] or 0) == prof["flops"] for p in points])
            x = np.geomspace(n[sel].min() / 1.5, n[sel].max() * 1.5, 80)
            a2, a1, a0 = prof["parabola"]
            ax.scatter(n[sel], loss[sel], color=color, zorder=3, label=f"C = {prof['flops']:.1e}")
            ax.plot(x, a0 + a1 * np.log(x) + a2 * np.log(x) ** 2, color=color, lw=1.2)
            ax.axvline(prof["n_opt"], color=color, ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("parameters N")
        ax.set_ylabel("final validation loss (nats/token)")
        ax.set_title(f"IsoFLOP profiles: N_opt ~ C^{isoflop.params['a']:.2f}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)

    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    tmp = out_png.with_name(out_png.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out_png)
    return out_png


def _law_label(fit: Fit) -> str:
    p = fit.params
    return f"{p['E']:.2f} + {p['A']:.3g} / N^{p['alpha']:.3f}"
