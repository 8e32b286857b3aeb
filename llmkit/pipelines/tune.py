"""Hyperparameter search: the steps a user would describe, in order.

Check the space against the tuned command's schema and the objective against what its runs
report, open (or join) the study, then take trials until the study holds ``--trials``: each
is an ordinary run of that command in ``trials/trial-NNNN`` whose validation passes feed the
pruner. Finally write trials.csv, best.yaml and the plots, and print the best trials.
"""

from __future__ import annotations

import importlib
import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmkit import config as config_lib
from llmkit.errors import ConfigError, LlmkitError

try:
    import optuna
    from optuna.trial import TrialState
except ImportError:  # an optional extra: say how to get it, in one line
    raise LlmkitError("llmkit tune needs Optuna: pip install 'llmkit[tune]'") from None

from llmkit.config.tune import TUNABLE, TuneConfig, TuneJob, config_class
from llmkit.tuning import report
from llmkit.tuning import study as study_lib
from llmkit.tuning.space import Param, apply, load_space

SETTINGS_FILE = "tune.yaml"  # the study's settings; also marks a folder as a study folder
TRIAL_FILE = "trial.json"  # in each trial folder: its state, value, params, last step


@dataclass
class Plan:
    """What every trial shares, checked before the first one starts."""

    job: TuneJob
    config_cls: type
    run: Any  # the tuned pipeline's run(cfg, on_evaluate=...)
    space: list[Param]
    max_steps: int
    eval_every: int


def run(job: TuneJob) -> optuna.Study:
    settings = job.settings
    out = Path(settings.output_dir)
    plan = make_plan(job, out)
    check_study_dir(out)
    pruner = study_lib.make_pruner(settings, plan.eval_every, plan.max_steps)
    local = study_lib.storage_kind(settings) != "url"
    storage = None if local else study_lib.open_storage(settings, out)  # fails before writing
    out.mkdir(parents=True, exist_ok=True)
    save_settings(job, out)
    storage = storage or study_lib.open_storage(settings, out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial prints its own line
    name = settings.study or out.resolve().name
    study = study_lib.open_study(settings, storage, name, pruner)
    for number in study_lib.recover_dead_workers(study):
        print(f"trial {number}: its worker died; it will be run again as a new trial")

    while (trial := study_lib.next_trial(study, settings.trials, out, local)) is not None:
        run_trial(study, trial, plan, out)

    write_reports(study, job, out)
    if report.best_trial(study) is None:
        raise LlmkitError(f"no trial of study {name!r} completed; see {out / 'trials.csv'}")
    return study


def make_plan(job: TuneJob, out: Path) -> Plan:
    """The space, a trial config at each end of every range, and the objective: all checked."""
    cls = config_class(job.pipeline)
    space = load_space(job.settings.space, cls)
    base = trial_config(job, cls, {}, out / "trials" / "check")
    for param in space:
        for value in param.corners:
            try:
                trial_config(job, cls, {param.key: value}, out / "trials" / "check")
            except ConfigError as e:
                raise ConfigError(f"search space {param.key}={value!r}: {e}") from None
    check_objective(job.settings, base)
    module, attr = TUNABLE[job.pipeline][1].split(":")
    return Plan(
        job=job,
        config_cls=cls,
        run=getattr(importlib.import_module(module), attr),
        space=space,
        max_steps=base.train.max_steps,
        eval_every=getattr(base, "eval_every", base.train.eval_steps),
    )


def trial_config(job: TuneJob, cls: type, params: dict[str, Any], folder: Path):
    """Recipe <- command-line options <- the trial's params, in the trial's own folder."""
    values = config_lib.load_recipe(job.recipe) if job.recipe else {}
    for key, value in {**job.overrides, **params, "output_dir": str(folder)}.items():
        apply(values, key, value)
    cfg = config_lib.from_dict(cls, values)
    cfg.validate()
    return cfg


def produced_metrics(cfg) -> set[str]:
    """Validation metrics a run of ``cfg`` logs: the loss, and a task's metrics."""
    names = {"val_loss", "val_ppl"}
    if hasattr(cfg, "task") and hasattr(cfg, "eval"):
        from llmkit.evaluation.metrics import scored_names
        from llmkit.tasks import get_task

        task = get_task(cfg.task.name, cfg.task.options)
        if cfg.eval.max_examples:
            names |= {f"val_{n}" for n in scored_names(cfg.eval.metrics or task.default_metrics)}
    return names


def check_objective(settings: TuneConfig, base) -> None:
    produced = produced_metrics(base)
    if settings.metric not in produced:
        raise ConfigError(
            f"--objective {settings.objective!r} is not a validation metric of these runs; "
            f"choose one of {', '.join(sorted(produced))}"
        )


def check_study_dir(out: Path) -> None:
    """The study folder is new, or a study's (perhaps another worker's that is just starting)."""
    if out.exists() and not out.is_dir():
        raise LlmkitError(f"output_dir {out} is a file; choose a folder for the study")
    # A worker that is just creating the study may have written only these (and their locks).
    ours = (SETTINGS_FILE, study_lib.JOURNAL_FILE, study_lib.SQLITE_FILE, "trials", ".")
    names = [p.name for p in out.iterdir()] if out.is_dir() else []
    foreign = [n for n in names if not n.startswith(ours)]
    if foreign and not (out / SETTINGS_FILE).is_file():
        raise LlmkitError(
            f"output_dir {out} is not empty and holds no study; choose another --output_dir"
        )


def save_settings(job: TuneJob, out: Path) -> None:
    record = {
        "pipeline": job.pipeline,
        "recipe": job.recipe,
        "options": {k: v for k, v in job.overrides.items()},
        "space": yaml.safe_load(Path(job.settings.space).read_text()),
        "tune": config_lib.to_dict(job.settings),
    }
    report.write_atomic(out / SETTINGS_FILE, yaml.safe_dump(record, sort_keys=False))


class Reporter:
    """The trial's ``on_evaluate``: report each validation pass, raise TrialPruned when the
    pruner says so (the training loop lets it through)."""

    def __init__(self, trial: optuna.Trial, metric: str, max_steps: int):
        self.trial, self.metric, self.max_steps = trial, metric, max_steps
        self.last: dict[str, float] = {}
        self.reported: dict[int, float] = {}  # step -> objective, as given to the pruner

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        self.last = metrics
        value = study_lib.objective_value(metrics, self.metric)
        if step == 0 or value is None:
            return
        self.trial.report(value, step)
        self.reported[step] = value
        if step < self.max_steps and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")


def run_trial(study: optuna.Study, trial: optuna.Trial, plan: Plan, out: Path) -> None:
    """One ordinary run; a pruned or failed run is recorded, the study goes on."""
    metric = plan.job.settings.metric
    params = {p.key: p.suggest(trial) for p in plan.space}
    folder = out / "trials" / f"trial-{trial.number:04d}"
    print(f"\ntrial {trial.number}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    state, value, error = TrialState.FAIL, None, None
    reporter = Reporter(trial, metric, plan.max_steps)
    try:
        cfg = trial_config(plan.job, plan.config_cls, params, folder)
        trial.set_user_attr(
            report.CONFIG_ATTR, yaml.safe_dump(config_lib.to_dict(cfg), sort_keys=False)
        )
        reporter.max_steps = cfg.train.max_steps
        plan.run(cfg, on_evaluate=reporter)
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except KeyboardInterrupt:
        study_lib.mark_interrupted(study, trial, "interrupted: a re-run replaces it")
        write_trial_file(folder, trial, "INTERRUPTED", None, None, reporter.reported)
        raise
    except Exception as e:  # noqa: BLE001 - out of memory, NaN loss, a bad value: one trial
        error = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if folder.is_dir():
            (folder / "error.txt").write_text(traceback.format_exc())
    else:
        value = study_lib.objective_value(reporter.last, metric)
        state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        error = None if value is not None else f"{metric} missing or not finite at the end"
    if error:
        trial.set_user_attr("llmkit_error", error[:500])
    study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    write_trial_file(folder, trial, state.name, value, error, reporter.reported)
    ending = f"{metric}={value:.4f}" if value is not None else error
    if state == TrialState.PRUNED:
        ending = f"pruned at step {max(reporter.reported)} of {reporter.max_steps}"
    print(f"trial {trial.number}: {state.name.lower()}, {ending}")


def write_trial_file(folder: Path, trial, state: str, value, error, reported: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "number": trial.number,
        "state": state,
        "value": value,
        "params": trial.params,
        "intermediate_values": {str(k): v for k, v in sorted(reported.items())},
        "last_step": max(reported, default=None),
        "error": error,
    }
    report.write_atomic(folder / TRIAL_FILE, json.dumps(info, indent=2) + "\n")


def write_reports(study: optuna.Study, job: TuneJob, out: Path) -> None:
    settings = job.settings
    report.write_trials_csv(study, out / "trials.csv")
    has_best = report.write_best_yaml(study, out / "best.yaml", job.pipeline, settings.metric)
    plots = report.write_plots(study, out)
    print("\n" + report.top_table(study, settings.metric, settings.top))
    print(
        f"study {study.study_name} in {out}: trials.csv"
        + (", best.yaml" if has_best else "")
        + "".join(f", {p}" for p in plots)
    )
