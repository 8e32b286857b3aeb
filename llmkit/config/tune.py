"""The configuration of `llmkit tune`: a search over any keys of a training recipe.

``llmkit tune --recipe RECIPE --space SPACE.yaml`` takes the options below plus every option
of the tuned command (``--train.max_steps 200`` applies to each trial). The tuned command is
``--pipeline``, or the ``# run: llmkit NAME`` first line of the recipe, or the one command
whose config has every top-level key of the recipe.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmkit.config.schema import fields_of, from_dict, load_recipe, option
from llmkit.errors import ConfigError

# The commands a study can tune: name -> (config class, pipeline run(cfg, on_evaluate=...)).
# Another training command becomes tunable with one row here.
TUNABLE: dict[str, tuple[str, str]] = {
    "pretrain": ("llmkit.config.pretrain:PretrainConfig", "llmkit.pipelines.pretrain:run"),
    "finetune": ("llmkit.config.finetune:FinetuneConfig", "llmkit.pipelines.finetune:run"),
    "distill": ("llmkit.config.distill:DistillConfig", "llmkit.pipelines.distill:run"),
}
SAMPLERS = ("tpe", "random", "cmaes", "qmc", "gp")
PRUNERS = ("median", "hyperband", "none")


@dataclass
class TuneConfig:
    output_dir: str = option("runs/tune", "the study folder: storage, trials/, reports, plots")
    space: str | None = option(None, "YAML search space: dotted recipe keys -> ranges or choices")
    trials: int = option(20, "trials the study holds when done, over all workers and re-runs")
    study: str | None = option(None, "study name (default: the study folder's name)")
    storage: str | None = option(
        None,
        "journal (default: study.journal in output_dir), sqlite (study.db there), or any "
        "Optuna RDB URL, e.g. postgresql://user@host/db, shared by several workers",
    )
    sampler: str = option("tpe", "Optuna sampler", choices=SAMPLERS)
    pruner: str = option(
        "median",
        "stop bad trials at a validation pass (median, Hyperband) or never (none)",
        choices=PRUNERS,
    )
    startup_trials: int | None = option(
        None, "tpe, gp: random trials before the sampler models the results (None: Optuna's 10)"
    )
    prune_startup_trials: int = option(3, "median pruner: finished trials before it prunes")
    objective: str = option(
        "val_loss", "validation metric to optimise: val_loss, val_ppl or a task metric (f1, ...)"
    )
    direction: str = option(
        "auto",
        "auto: minimise losses, perplexity and TER, maximise the rest",
        choices=("auto", "minimize", "maximize"),
    )
    seed: int | None = option(
        None, "sampler seed: a fixed search for one worker (give each worker its own, or none)"
    )
    pipeline: str | None = option(
        None, f"tuned command ({', '.join(TUNABLE)}); default: read from the recipe"
    )
    top: int = option(5, "trials in the printed table of the best")

    @property
    def metric(self) -> str:
        """The objective as the validation logs name it: f1 -> val_f1."""
        return "val_" + self.objective.removeprefix("val_")

    def validate(self) -> None:
        if not self.space:
            raise ConfigError("set the search space: --space SPACE.yaml")
        if self.trials < 1 or self.top < 1 or self.prune_startup_trials < 0:
            raise ConfigError("--trials and --top must be >= 1, --prune_startup_trials >= 0")
        if self.startup_trials is not None and self.startup_trials < 1:
            raise ConfigError("--startup_trials must be >= 1 or None")
        if self.pipeline is not None and self.pipeline not in TUNABLE:
            raise ConfigError(
                f"--pipeline {self.pipeline!r} cannot be tuned; choose one of {', '.join(TUNABLE)}"
            )

    @classmethod
    def cli_trial_config(cls, argv: list[str]) -> type | None:
        """The tuned command's config, whose options every trial takes (``--train.*``)."""
        try:
            return config_class(pipeline_name(_flag(argv, "--pipeline"), _flag(argv, "--recipe")))
        except ConfigError:
            return None  # reported as one line when the command runs

    @classmethod
    def from_cli(cls, recipe: str | None, overrides: dict[str, Any]) -> TuneJob:
        """Split the command line into the study's settings and the trials' options."""
        own = fields_of(cls)
        settings = from_dict(cls, {k: v for k, v in overrides.items() if k in own})
        settings.validate()
        return TuneJob(
            settings=settings,
            pipeline=pipeline_name(settings.pipeline, recipe),
            recipe=recipe,
            overrides={k: v for k, v in overrides.items() if k not in own},
        )


@dataclass
class TuneJob:
    """A study to run: its settings, the recipe and the options applied to every trial."""

    settings: TuneConfig
    pipeline: str
    recipe: str | None  # None: the trials are the options alone (with --pipeline)
    overrides: dict[str, Any] = field(default_factory=dict)


def config_class(name: str) -> type:
    module, attr = TUNABLE[name][0].split(":")
    return getattr(importlib.import_module(module), attr)


def pipeline_name(explicit: str | None, recipe: str | None) -> str:
    """``--pipeline``, else the recipe's ``# run: llmkit NAME`` line, else its keys."""
    if explicit is not None:
        if explicit not in TUNABLE:
            raise ConfigError(f"--pipeline {explicit!r}: choose one of {', '.join(TUNABLE)}")
        return explicit
    if recipe is None:
        raise ConfigError(
            f"set the recipe to tune (--recipe RECIPE.yaml) or the command (--pipeline "
            f"{'|'.join(TUNABLE)})"
        )
    path = Path(recipe)
    values = load_recipe(path)
    words = path.read_text().split("\n", 1)[0].split()
    if words[:3] == ["#", "run:", "llmkit"] and len(words) > 3 and words[3] in TUNABLE:
        return words[3]
    fits = [n for n in TUNABLE if set(values) <= set(fields_of(config_class(n)))]
    if len(fits) != 1:
        raise ConfigError(
            f"recipe {recipe}: cannot tell which command it is for; pass --pipeline "
            f"({', '.join(TUNABLE)})"
        )
    return fits[0]


def _flag(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None
