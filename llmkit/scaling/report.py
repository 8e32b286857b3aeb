"""Fit the measured points, check the fit on held-out sizes, and write scaling.json/png."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from llmkit.config.scaling import ScalingConfig
from llmkit.errors import LlmkitError

LAW_PARAMETERS = {"approach3": 5, "size": 3}
NOTE = "published fits were made on other data, models and tokenizers: compare shapes, not values"


def check_enough_points(count: int, law: str) -> None:
    need = LAW_PARAMETERS[law]
    if count < need:
        raise LlmkitError(
            f"{count} points cannot fit a law of {need} parameters ({law}); the grid needs at "
            f"least {need} points: add sizes or token budgets"
        )


def fit_and_write(
    cfg: ScalingConfig, sweep: Path, points: list[dict], failures: dict[str, str], law: str
) -> dict:
    from threadpoolctl import threadpool_limits

    from llmkit.scaling import fit as fits
    from llmkit.scaling.plot import plot_scaling

    check_enough_points(len(points), law)
    n = np.array([p["n"] for p in points], float)
    d = np.array([p["tokens_seen"] for p in points], float)
    loss = np.array([p["val_loss"] for p in points], float)
    for p in points:
        p["flops_per_s"] = 6.0 * p["n"] * p["tokens_per_s"] if p["tokens_per_s"] else None
    # Multi-threaded BLAS on arrays this small only adds contention (10-100x slower when the
    # machine is busy), so the fits run on one thread.
    with threadpool_limits(1):
        kw = dict(bootstrap=cfg.fit.bootstrap, seed=cfg.fit.seed)
        fit = (
            fits.fit_approach3(n, d, loss, **kw)
            if law == "approach3"
            else fits.fit_size(n, loss, **kw)
        )
        holdout = fits.holdout_check(n, d, loss, law, cfg.fit.holdout)
        isoflop = None
        if cfg.grid.flops:
            budgets = np.array([p["flops_budget"] for p in points], float)
            try:
                isoflop = fits.fit_approach2(budgets, n, loss, **kw)
            except LlmkitError as e:
                print(f"approach 2 skipped: {e}")
    result = {
        "points": points,
        "failed": failures,
        "parameters_fitted": cfg.grid.parameters,
        "fits": {law: fit.to_dict()} | ({"approach2": isoflop.to_dict()} if isoflop else {}),
        "holdout": holdout,
    }
    if cfg.budget_flops is not None:
        result["budget"] = allocation(cfg.budget_flops, fit, isoflop)

    tmp = sweep / "scaling.json.tmp"
    tmp.write_text(json.dumps(strict(result), indent=2, allow_nan=False))
    tmp.replace(sweep / "scaling.json")
    held = holdout.get("held_out_sizes", [])
    holdout_fit = fits.Fit(law, holdout["params"]) if "params" in holdout else None
    plot_scaling(
        points,
        fit,
        sweep / "scaling.png",
        isoflop=isoflop,
        held_out=held,
        holdout_fit=holdout_fit,
        title=f"{sweep.name}: {len(points)} points, N = {cfg.grid.parameters} parameters",
    )
    print_summary(result, fit, sweep)
    return result


def strict(value):
    """JSON without NaN/Infinity (an unbounded bootstrap interval end becomes null)."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def allocation(flops: float, fit, isoflop) -> dict:
    from llmkit.scaling import fit as fits

    out = {"flops": flops, "note": NOTE}
    if fit.law == "approach3":
        n, d = fits.optimal_allocation(flops, fit.params)
        out["approach3"] = {
            "N": n,
            "D": d,
            "intervals_95": fits.allocation_interval(flops, fit.samples),
        }
    if isoflop is not None:
        n, d = isoflop.optimum(flops)
        pairs = np.array([isoflop.optimum(flops, s) for s in isoflop.samples])
        out["approach2"] = {"N": n, "D": d}
        if len(pairs):
            out["approach2"]["intervals_95"] = {
                "N": list(np.percentile(pairs[:, 0], [2.5, 97.5])),
                "D": list(np.percentile(pairs[:, 1], [2.5, 97.5])),
            }
    out["published"] = {
        name: dict(zip(("N", "D"), fits.optimal_allocation(flops, p)))
        for name, p in fits.PUBLISHED.items()
    }
    return out


def print_summary(result: dict, fit, sweep: Path) -> None:
    print(
        f"\n{'point':<22}{'N':>12}{'D':>12}{'C=6ND':>11}{'val loss':>10}{'wall s':>8}{'FLOP/s':>10}"
    )
    for p in result["points"]:
        wall = f"{p['wall_seconds']:.0f}" if p.get("wall_seconds") else "-"
        fps = f"{p['flops_per_s']:.2e}" if p.get("flops_per_s") else "-"
        print(
            f"{p['name']:<22}{p['n']:>12,}{p['tokens_seen']:>12,}{p['flops']:>11.2e}"
            f"{p['val_loss']:>10.4f}{wall:>8}{fps:>10}"
        )
    for name, msg in result["failed"].items():
        print(f"{name:<22}failed: {msg}")
    print(f"\nfit ({result['parameters_fitted']} N): {fit.to_dict()['formula']}")
    for k, v in fit.params.items():
        lo_hi = fit.intervals.get(k)
        ci = f"  95% [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi else ""
        print(f"  {k:<6} {v:.4g}{ci}")
    g = fit.goodness
    print(f"  rmse(log L) {g['rmse_log']:.4f}, max |rel error| {g['max_abs_rel_error']:.2%}")
    if "approach2" in result["fits"]:
        p = result["fits"]["approach2"]["params"]
        print(
            f"approach 2: N_opt = {p['k_n']:.3g} C^{p['a']:.3f}, "
            f"D_opt = {p['k_d']:.3g} C^{p['b']:.3f}"
        )
    h = result["holdout"]
    if "skipped" in h:
        print(f"holdout check skipped: {h['skipped']}")
    else:
        print(f"holdout: fit without the {len(h['held_out_sizes'])} largest size(s), predicted:")
        for p in h["points"]:
            print(
                f"  N={p['n']:,.0f} D={p['d']:,.0f}: measured {p['measured']:.4f}, "
                f"predicted {p['predicted']:.4f} ({p['rel_error']:+.2%})"
            )
    if "budget" in result:
        b = result["budget"]
        print(f"\ncompute-optimal at C = {b['flops']:.3g} FLOPs:")
        for name in ("approach3", "approach2"):
            if name in b:
                ci = b[name].get("intervals_95", {})
                print(
                    f"  {name:<22} N {_with_ci(b[name]['N'], ci.get('N'))}  "
                    f"D {_with_ci(b[name]['D'], ci.get('D'))}"
                )
        for name, a in b["published"].items():
            print(f"  {name:<22} N {a['N']:.3g}  D {a['D']:.3g}")
        print(f"  ({NOTE})")
    print(f"\nwrote {sweep / 'scaling.json'} and {sweep / 'scaling.png'}")


def _with_ci(value: float, ci) -> str:
    return f"{value:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
