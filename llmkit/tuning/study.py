"""The Optuna study: storage, sampler, pruner, and handing out trials to workers.

Several workers (processes, GPUs, machines) share a study through its storage. ``--trials N``
is the size of the whole study: a worker takes a trial only while the study holds fewer than
N, so workers and re-runs together run exactly N. With a file storage in the study folder a
lock makes "count, then take" atomic; with a database a trial taken past N in a race is
marked surplus and never run. A trial whose run was interrupted (Ctrl-C, or a worker on this
machine that died) is marked and not counted, so a re-run replaces it.
"""

from __future__ import annotations

import fcntl
import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import optuna
from optuna.trial import TrialState

from llmkit.config.tune import TuneConfig
from llmkit.errors import ConfigError, LlmkitError
from llmkit.training.validation import LOWER_IS_BETTER

JOURNAL_FILE = "study.journal"
SQLITE_FILE = "study.db"
LOCK_FILE = ".claim.lock"
UNCOUNTED = "llmkit_uncounted"  # user attr: why a trial does not count towards --trials
WORKER = "llmkit_worker"  # user attr: host:pid of the worker that runs the trial


def direction(settings: TuneConfig) -> str:
    if settings.direction != "auto":
        return settings.direction
    lower = settings.objective.rsplit("_", 1)[-1] in LOWER_IS_BETTER
    return "minimize" if lower else "maximize"


def storage_kind(settings: TuneConfig) -> str:
    """journal or sqlite (files in the study folder), or url (any other storage)."""
    s = settings.storage
    return "journal" if s in (None, "journal") else "sqlite" if s == "sqlite" else "url"


def open_storage(settings: TuneConfig, study_dir: Path) -> optuna.storages.BaseStorage:
    """The study's storage; a URL that cannot be opened is one line naming it (no password)."""
    kind = storage_kind(settings)
    if kind == "journal":
        backend = optuna.storages.journal.JournalFileBackend(str(study_dir / JOURNAL_FILE))
        return optuna.storages.JournalStorage(backend)
    url = f"sqlite:///{study_dir / SQLITE_FILE}" if kind == "sqlite" else settings.storage
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
    except Exception as e:  # noqa: BLE001 - drivers raise anything; the user needs one line
        if isinstance(e, ImportError):
            raise LlmkitError(
                f"--storage {safe_url(url)} cannot be opened: its database driver is not "
                "installed; pip install psycopg2-binary (PostgreSQL) or pymysql (MySQL)"
            ) from None
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LlmkitError(
            f"--storage {safe_url(url)} cannot be opened: {reason[:300]}; check the URL, "
            "that the server is up and the database exists"
        ) from None


def engine_kwargs(url: str) -> dict:
    """Fail fast on an unreachable server instead of waiting for the driver's default."""
    if url.startswith(("postgresql", "mysql")):
        return {"connect_args": {"connect_timeout": 10}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}  # several local workers wait for the lock
    return {}


def safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not parseable: show only the scheme
        return url.split("://", 1)[0] + "://..."


def make_sampler(settings: TuneConfig, done: int = 0) -> optuna.samplers.BaseSampler:
    """A seeded sampler joining a study that already holds ``done`` trials is seeded
    ``seed + done``, so a re-run does not draw its first random trials again."""
    seed = None if settings.seed is None else settings.seed + done
    startup = (
        {} if settings.startup_trials is None else {"n_startup_trials": settings.startup_trials}
    )
    return {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, **startup),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed, **startup),
    }[settings.sampler]()


def make_pruner(settings: TuneConfig, eval_every: int, max_steps: int) -> optuna.pruners.BasePruner:
    """Pruners compare trials at the training loop's validation steps."""
    if settings.pruner == "none":
        return optuna.pruners.NopPruner()
    if eval_every < 1 or eval_every >= max_steps:
        raise ConfigError(
            f"--pruner {settings.pruner} needs validation passes during training: set "
            "train.eval_steps (finetune: eval.every_n_steps) below train.max_steps, or "
            "--pruner none"
        )
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=max_steps)
    return optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup_trials)


def open_study(settings: TuneConfig, storage, name: str, pruner) -> optuna.Study:
    """Create the study, or join it as it is (another worker's, or an earlier run's)."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=make_sampler(settings),
        pruner=pruner,
        direction=direction(settings),
        load_if_exists=True,
    )
    if study.trials:
        study.sampler = make_sampler(settings, len(study.trials))
    if study.direction.name.lower() != direction(settings):
        raise ConfigError(
            f"study {name!r} {study.direction.name.lower()}s its objective, not "
            f"{direction(settings)}s; use another --study or the same --direction"
        )
    return study


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if UNCOUNTED not in t.user_attrs]


@contextmanager
def claim_lock(study_dir: Path, local: bool) -> Iterator[None]:
    if not local:
        with nullcontext():
            yield
        return
    with (study_dir / LOCK_FILE).open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def next_trial(study: optuna.Study, total: int, study_dir: Path, local: bool):
    """A new trial for this worker, or None when the study holds ``total`` trials."""
    with claim_lock(study_dir, local):
        if len(counted(study)) >= total:
            return None
        trial = study.ask()
        trial.set_user_attr(WORKER, worker_id())
    before = [t for t in counted(study) if t.number < trial.number]
    if len(before) >= total:  # another worker took the last one at the same moment
        trial.set_user_attr(UNCOUNTED, "surplus: the study already held --trials trials")
        study.tell(trial, state=TrialState.FAIL)
        return None
    return trial


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def mark_interrupted(study: optuna.Study, trial, why: str) -> None:
    """Finish a trial that did not run to its end, so that a re-run replaces it."""
    trial.set_user_attr(UNCOUNTED, why)
    study.tell(trial, state=TrialState.FAIL)


def recover_dead_workers(study: optuna.Study) -> list[int]:
    """RUNNING trials of workers on this machine that no longer live: mark them interrupted.

    (A worker on another machine that died leaves its trial RUNNING; see the README.)
    """
    host = socket.gethostname()
    numbers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get(WORKER, "")
        w_host, _, pid = worker.rpartition(":")
        if w_host == host and pid.isdigit() and not _alive(int(pid)):
            # Optuna has no public call to finish another worker's trial; its storage API does.
            storage = study._storage
            storage.set_trial_user_attr(t._trial_id, UNCOUNTED, "its worker died")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            numbers.append(t.number)
    return numbers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def objective_value(metrics: dict[str, float], name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None
