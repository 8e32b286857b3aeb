"""Scaling-law fits with scipy: Approach 3, Approach 2 (IsoFLOP) and L(N) at fixed D.

Approach 3 follows Besiroglu et al. 2024 (the replication of Hoffmann et al. 2022):
``L(N, D) = E + A / N^alpha + B / D^beta`` fitted as ``log L = LSE(a - alpha log N,
b - beta log D, e)`` with ``A = e^a, B = e^b, E = e^e``, a Huber loss (delta 1e-3) on the
log residuals, L-BFGS-B from a grid of starting points, and bootstrap intervals over points.
scipy has the optimizer but no scaling-law objective, so the objective and its gradient are
written here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from llmkit.errors import LlmkitError

HUBER_DELTA = 1e-3

# Published Approach 3 fits (fitted on their own data, not on yours).
PUBLISHED = {
    "Hoffmann et al. 2022": dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
    "Besiroglu et al. 2024": dict(E=1.82, A=482.0, B=2085.4, alpha=0.348, beta=0.366),
}

# The initialisation grid of Hoffmann et al. / Besiroglu et al. (4,500 starts).
FULL_GRID = dict(
    a=np.arange(0, 30, 5.0),
    b=np.arange(0, 30, 5.0),
    e=np.arange(-1, 1.5, 0.5),
    alpha=np.arange(0, 2.5, 0.5),
    beta=np.arange(0, 2.5, 0.5),
)


def chinchilla_loss(n, d, E, A, B, alpha, beta):
    """The Approach 3 law itself."""
    return E + A / np.asarray(n, float) ** alpha + B / np.asarray(d, float) ** beta


def size_loss(n, E, A, alpha):
    """The size-only law at a fixed token budget."""
    return E + A / np.asarray(n, float) ** alpha


# ---------------------------------------------------------------------------------------------
# The objective: Huber loss of log-sum-exp predictions against log losses


def _huber(r: np.ndarray) -> np.ndarray:
    return np.where(
        np.abs(r) <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA)
    )


def _huber_objective(theta: np.ndarray, design: np.ndarray, log_loss: np.ndarray):
    """Sum of Huber losses of ``LSE_k(z_k) - log L`` and its gradient.

    Every term is linear in the parameters, ``z = design @ theta`` with ``design`` of shape
    (terms, points, parameters), so the gradient is the softmax-weighted design.
    """
    z = design @ theta
    top = z.max(axis=0)
    pred = top + np.log(np.exp(z - top).sum(axis=0))  # log-sum-exp over the terms
    r = pred - log_loss
    dr = np.clip(r, -HUBER_DELTA, HUBER_DELTA)  # derivative of the Huber loss
    weights = np.exp(z - pred) * dr  # d pred / d z, times d loss / d pred
    k, n, p = design.shape
    return float(_huber(r).sum()), weights.reshape(k * n) @ design.reshape(k * n, p)


def _design_nd(log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """Parameters (a, b, e, alpha, beta); terms a - alpha log N, b - beta log D, e."""
    one, zero = np.ones_like(log_n), np.zeros_like(log_n)
    return np.stack(
        [
            np.stack([one, zero, zero, -log_n, zero], -1),
            np.stack([zero, one, zero, zero, -log_d], -1),
            np.stack([zero, zero, one, zero, zero], -1),
        ]
    )


def _design_n(log_n: np.ndarray) -> np.ndarray:
    """Parameters (a, e, alpha); terms a - alpha log N, e."""
    one, zero = np.ones_like(log_n), np.zeros_like(log_n)
    return np.stack([np.stack([one, zero, -log_n], -1), np.stack([zero, one, zero], -1)])


def _minimize_from(
    starts: np.ndarray, design: np.ndarray, log_loss: np.ndarray, keep: int, bounds
) -> np.ndarray:
    """L-BFGS-B from the ``keep`` grid points with the lowest objective; the best optimum.

    Running all 4,500 starts for every bootstrap resample would take minutes; the objective of
    the whole grid is one array operation, and its lowest starts reach the optimum the full
    grid reaches on Chinchilla-like data (tests/test_scaling.py).
    """
    z = np.einsum("knp,sp->skn", design, starts)
    values = _huber(logsumexp(z, axis=1) - log_loss).sum(axis=1)
    best, best_value = None, np.inf
    for s in starts[np.argsort(values)[:keep]]:
        res = minimize(
            _huber_objective,
            s,
            args=(design, log_loss),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
        )
        if np.isfinite(res.fun) and res.fun < best_value:
            best, best_value = res.x, res.fun
    return best


# Exponents stay non-negative (a loss that falls with size); the rest is free.
BOUNDS_ND = [(None, None)] * 3 + [(0.0, None)] * 2
BOUNDS_N = [(None, None)] * 2 + [(0.0, None)]


def _grid(names: Sequence[str]) -> np.ndarray:
    return np.array(list(itertools.product(*(FULL_GRID[n] for n in names))), dtype=float)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Fit:
    """A fitted law: parameters, their bootstrap intervals and goodness of fit."""

    law: str
    params: dict[str, float]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    goodness: dict[str, float] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list, repr=False)

    def predict(self, n, d=None):
        if self.law == "approach3":
            return chinchilla_loss(n, d, **self.params)
        return size_loss(n, **self.params)

    def to_dict(self) -> dict:
        return {
            "law": self.law,
            "formula": FORMULAS[self.law],
            "params": self.params,
            "intervals_95": self.intervals,
            "goodness": self.goodness,
            "bootstrap_samples": len(self.samples),
        }


FORMULAS = {
    "approach3": "L(N, D) = E + A / N^alpha + B / D^beta",
    "size": "L(N) = E + A / N^alpha (fixed D)",
}


def _goodness(loss: np.ndarray, pred: np.ndarray, objective: float) -> dict[str, float]:
    r = np.log(pred) - np.log(loss)
    ss_tot = float(((loss - loss.mean()) ** 2).sum())
    return {
        "points": int(len(loss)),
        "huber_objective": float(objective),
        "rmse_log": float(np.sqrt((r**2).mean())),
        "max_abs_rel_error": float(np.max(np.abs(pred / loss - 1))),
        "r2": float(1 - ((pred - loss) ** 2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
    }


def _intervals(samples: list[dict[str, float]]) -> dict[str, list[float]]:
    if not samples:
        return {}
    return {
        k: [float(np.percentile([s[k] for s in samples], q)) for q in (2.5, 97.5)]
        for k in samples[0]
    }


def _check_points(count: int, n_params: int, law: str) -> None:
    if count < n_params:
        raise LlmkitError(
            f"{count} points cannot fit {FORMULAS[law]} ({n_params} parameters); the grid needs "
            f"at least {n_params} finished points: add sizes or token budgets"
        )


# ---------------------------------------------------------------------------------------------
# The fits


def fit_approach3(
    n: Sequence[float],
    d: Sequence[float],
    loss: Sequence[float],
    *,
    bootstrap: int = 200,
    seed: int = 0,
    keep: int = 64,
) -> Fit:
    """Approach 3 with bootstrap intervals over points (resampled with replacement)."""
    n, d, loss = (np.asarray(x, float) for x in (n, d, loss))
    _check_points(len(loss), 5, "approach3")
    grid = _grid(("a", "b", "e", "alpha", "beta"))

    def solve(idx, starts, k):
        design = _design_nd(np.log(n[idx]), np.log(d[idx]))
        return _minimize_from(starts, design, np.log(loss[idx]), k, BOUNDS_ND)

    everything = np.arange(len(loss))
    theta = solve(everything, grid, keep)
    objective = _huber_objective(theta, _design_nd(np.log(n), np.log(d)), np.log(loss))[0]
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(loss), len(loss))
        if len(np.unique(n[idx])) < 2 or len(np.unique(d[idx])) < 2:
            continue  # a resample without two sizes and two budgets cannot identify the law
        # From the full-data optimum and the best few grid points of this resample.
        samples.append(_nd_params(solve(idx, np.vstack([theta, grid]), 8)))
    params = _nd_params(theta)
    pred = chinchilla_loss(n, d, **params)
    return Fit("approach3", params, _intervals(samples), _goodness(loss, pred, objective), samples)


def _nd_params(theta) -> dict[str, float]:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return dict(E=np.exp(e), A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta)


def fit_size(
    n: Sequence[float], loss: Sequence[float], *, bootstrap: int = 200, seed: int = 0
) -> Fit:
    """L(N) = E + A / N^alpha at one token budget, the same way (LSE, Huber, L-BFGS-B)."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    _check_points(len(loss), 3, "size")
    grid = _grid(("a", "e", "alpha"))

    def solve(idx, starts, k):
        return _minimize_from(starts, _design_n(np.log(n[idx])), np.log(loss[idx]), k, BOUNDS_N)

    theta = solve(np.arange(len(loss)), grid, 32)
    objective = _huber_objective(theta, _design_n(np.log(n)), np.log(loss))[0]
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(loss), len(loss))
        if len(np.unique(n[idx])) < 3:
            continue
        samples.append(_n_params(solve(idx, np.vstack([theta, grid]), 8)))
    params = _n_params(theta)
    pred = size_loss(n, **params)
    return Fit("size", params, _intervals(samples), _goodness(loss, pred, objective), samples)


def _n_params(theta) -> dict[str, float]:
    a, e, alpha = (float(x) for x in theta)
    return dict(E=np.exp(e), A=np.exp(a), alpha=alpha)


# ---------------------------------------------------------------------------------------------
# Approach 2: IsoFLOP profiles


@dataclass
class IsoFlopFit:
    """A parabola in log N per compute budget, its optimum, and power laws through the optima:
    N_opt = k_n C^a, D_opt = k_d C^b."""

    profiles: list[dict]
    params: dict[str, float]
    intervals: dict[str, list[float]] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list, repr=False)

    def optimum(self, flops: float, params: dict[str, float] | None = None) -> tuple[float, float]:
        p = params or self.params
        return p["k_n"] * flops ** p["a"], p["k_d"] * flops ** p["b"]

    def to_dict(self) -> dict:
        return {
            "law": "approach2",
            "formula": "N_opt = k_n C^a, D_opt = k_d C^b (parabola per IsoFLOP profile)",
            "profiles": self.profiles,
            "params": self.params,
            "intervals_95": self.intervals,
            "bootstrap_samples": len(self.samples),
        }


def _profile_optima(budgets: np.ndarray, n: np.ndarray, loss: np.ndarray) -> list[dict[str, float]]:
    profiles = []
    for c in np.unique(budgets):
        sel = budgets == c
        if len(np.unique(n[sel])) < 3:
            continue
        x = np.log(n[sel])
        a2, a1, a0 = np.polyfit(x, loss[sel], 2)
        if a2 <= 0:
            continue  # no minimum inside this profile
        log_n_opt = -a1 / (2 * a2)
        n_opt = float(np.exp(log_n_opt))
        profiles.append(
            dict(
                flops=float(c),
                n_opt=n_opt,
                d_opt=float(c / (6 * n_opt)),
                loss_opt=float(a0 + a1 * log_n_opt + a2 * log_n_opt**2),
                parabola=[float(a2), float(a1), float(a0)],
                inside=bool(x.min() <= log_n_opt <= x.max()),
            )
        )
    return profiles


def _power_laws(profiles: list[dict]) -> dict[str, float] | None:
    if len(profiles) < 2:
        return None
    log_c = np.log([p["flops"] for p in profiles])
    a, log_kn = np.polyfit(log_c, np.log([p["n_opt"] for p in profiles]), 1)
    b, log_kd = np.polyfit(log_c, np.log([p["d_opt"] for p in profiles]), 1)
    return dict(a=float(a), k_n=float(np.exp(log_kn)), b=float(b), k_d=float(np.exp(log_kd)))


def fit_approach2(
    budgets: Sequence[float],
    n: Sequence[float],
    loss: Sequence[float],
    *,
    bootstrap: int = 200,
    seed: int = 0,
) -> IsoFlopFit:
    """Approach 2; intervals from resampling points within each profile."""
    budgets, n, loss = (np.asarray(x, float) for x in (budgets, n, loss))
    profiles = _profile_optima(budgets, n, loss)
    params = _power_laws(profiles)
    if params is None:
        raise LlmkitError(
            "Approach 2 needs at least two IsoFLOP profiles with 3+ sizes and a minimum; add "
            "sizes around the optimum or more grid.flops budgets"
        )
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(budgets == c) for c in np.unique(budgets)]
    samples = []
    for _ in range(bootstrap):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        p = _power_laws(_profile_optima(budgets[idx], n[idx], loss[idx]))
        if p is not None:
            samples.append(p)
    return IsoFlopFit(profiles, params, _intervals(samples), samples)


# ---------------------------------------------------------------------------------------------
# Compute-optimal allocation and the holdout check


def optimal_allocation(flops: float, p: dict[str, float]) -> tuple[float, float]:
    """N and D minimising Approach 3's loss at C = 6ND (Hoffmann et al. eq. 4)."""
    alpha, beta = p["alpha"], p["beta"]
    g = (alpha * p["A"] / (beta * p["B"])) ** (1 / (alpha + beta))
    n = g * (flops / 6) ** (beta / (alpha + beta))
    return float(n), float(flops / (6 * n))


def allocation_interval(flops: float, samples: list[dict[str, float]]) -> dict[str, list[float]]:
    if not samples:
        return {}
    pairs = np.array([optimal_allocation(flops, s) for s in samples])
    return {
        "N": [float(x) for x in np.percentile(pairs[:, 0], [2.5, 97.5])],
        "D": [float(x) for x in np.percentile(pairs[:, 1], [2.5, 97.5])],
    }


def holdout_check(
    n: Sequence[float],
    d: Sequence[float],
    loss: Sequence[float],
    law: str,
    largest: int = 1,
) -> dict:
    """Fit without the ``largest`` sizes, predict their losses, and report the errors."""
    n, d, loss = (np.asarray(x, float) for x in (n, d, loss))
    sizes = np.unique(n)
    if largest < 1 or len(sizes) <= largest:
        return {"skipped": f"needs more than {largest} sizes"}
    need = 5 if law == "approach3" else 3
    if len(sizes) - largest < 2 or (n < sizes[-largest]).sum() < need:
        return {"skipped": f"too few points left to fit after holding out {largest} size(s)"}
    held = n >= sizes[-largest]
    try:
        if law == "approach3":
            fit = fit_approach3(n[~held], d[~held], loss[~held], bootstrap=0)
        else:
            fit = fit_size(n[~held], loss[~held], bootstrap=0)
    except LlmkitError as e:
        return {"skipped": str(e)}
    pred = fit.predict(n[held], d[held])
    rel = pred / loss[held] - 1
    return {
        "held_out_sizes": [float(x) for x in sizes[-largest:]],
        "fit_points": int((~held).sum()),
        "params": fit.params,
        "points": [
            dict(n=float(a), d=float(b), measured=float(c), predicted=float(p), rel_error=float(r))
            for a, b, c, p, r in zip(n[held], d[held], loss[held], pred, rel)
        ],
        "max_abs_rel_error": float(np.max(np.abs(rel))),
    }
