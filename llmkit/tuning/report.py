"""What a study leaves in its folder: trials.csv, best.yaml, Optuna's plots, a printed table."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

CONFIG_ATTR = "llmkit_config"  # user attr: the trial's full resolved recipe (YAML text)
PLOTS = {
    "history.png": "plot_optimization_history",
    "importances.png": "plot_param_importances",
    "intermediate.png": "plot_intermediate_values",
}


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    """One row per trial: number, state, value, seconds, params, what became of it."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params"))
    if df.empty:
        write_atomic(path, "number,state,value,duration_s\n")
        return
    df["duration_s"] = df.pop("duration").dt.total_seconds().round(2)
    trials = study.get_trials(deepcopy=False)
    df["last_step"] = [max(t.intermediate_values, default=None) for t in trials]
    df["note"] = [
        t.user_attrs.get("llmkit_uncounted") or t.user_attrs.get("llmkit_error", "") for t in trials
    ]
    df.columns = [c.removeprefix("params_") for c in df.columns]
    write_atomic(path, df.to_csv(index=False))


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if done else None


def write_best_yaml(study: optuna.Study, path: Path, pipeline: str, objective: str) -> bool:
    """The best trial's full recipe, its output_dir moved to ``<study>/best`` so that
    ``llmkit PIPELINE --recipe best.yaml`` repeats it in a fresh folder."""
    best = best_trial(study)
    if best is None or CONFIG_ATTR not in best.user_attrs:
        return False
    values = yaml.safe_load(best.user_attrs[CONFIG_ATTR])
    values["output_dir"] = str(path.parent / "best")
    header = (
        f"# run: llmkit {pipeline} --recipe {path}\n"
        f"# trial {best.number} of study {study.study_name}: {objective} = {best.value:.6g}\n"
        + "".join(f"#   {k}: {v}\n" for k, v in best.params.items())
    )
    write_atomic(path, header + yaml.safe_dump(values, sort_keys=False))
    return True


def write_plots(study: optuna.Study, folder: Path) -> list[str]:
    """Optuna's matplotlib plots; one that the study cannot support yet is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    written = []
    for name, fn in PLOTS.items():
        if name == "importances.png" and not _importances_possible(study):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the matplotlib backend is "experimental"
            try:
                ax = getattr(vis, fn)(study)
            except (ValueError, RuntimeError):
                continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(7.5, 4.5)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def _importances_possible(study: optuna.Study) -> bool:
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return len(done) >= 2 and len({tuple(sorted(t.params.items())) for t in done}) >= 2


def top_table(study: optuna.Study, objective: str, k: int) -> str:
    """The best ``k`` finished trials, then how many were pruned or failed."""
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    done.sort(key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    head = ["trial", objective, *keys]
    rows = [[str(t.number), f"{t.value:.4f}", *(_fmt(t.params.get(p)) for p in keys)] for t in done]
    rows = rows[:k]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [head, *rows]]
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    lines.append(
        f"{len(trials)} trials: {counts[TrialState.COMPLETE]} complete, "
        f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed"
        + (f", {counts[TrialState.RUNNING]} running" if counts[TrialState.RUNNING] else "")
    )
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
