"""`llmkit tune`: a search finds a known-good learning rate, bad trials are pruned, two workers
share one study, best.yaml repeats the best trial, a re-run resumes, bad input is one line.

Trials are 2-layer pretraining runs of 10 steps on real text. Every trial is deterministic
(fixed train.seed, CPU), and the searches that assert a result use a seeded sampler, so the
trials and their order are the same on every run: nothing here depends on luck or timing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import check_error, finetune_args, pretrain_args

from llmkit.cli import main
from llmkit.config.tune import config_class, pipeline_name
from llmkit.training.logging import read_metrics
from llmkit.tuning.space import load_space

REPO = Path(__file__).resolve().parents[1]
STEPS = 10


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, corpus_file) -> Path:
    """A tiny pretraining recipe (validation every 5 of 10 steps), its data cache warmed once
    so that trials, and workers started together, only read it."""
    folder = tmp_path_factory.mktemp("tune-recipe")
    args = pretrain_args(folder / "warm", corpus_file, folder / "cache", "--train.max_steps", "1")
    assert main(args) == 0
    values: dict = {}
    for flag, value in zip(args[1::2], args[2::2]):
        key = flag.removeprefix("--")
        if key != "output_dir":
            values[key] = value
    values |= {"train.max_steps": STEPS, "train.eval_steps": 5, "train.eval_max_batches": 4}
    nested: dict = {}
    for key, value in values.items():
        section, name = key.split(".")
        nested.setdefault(section, {})[name] = value
    nested["model"]["config_overrides"] = yaml.safe_load(nested["model"]["config_overrides"])
    nested["train"]["report_to"] = ["none"]
    path = folder / "tiny.yaml"
    path.write_text("# run: llmkit pretrain --recipe tiny.yaml\n" + yaml.safe_dump(nested))
    return path


def write_space(folder: Path, text: str) -> Path:
    path = folder / "space.yaml"
    path.write_text(text)
    return path


def tune(out: Path, recipe: Path, space: Path, *extra: str) -> list[str]:
    return [
        "tune",
        "--recipe",
        str(recipe),
        "--space",
        str(space),
        "--output_dir",
        str(out),
        *extra,
    ]


def load(out: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))
    )
    return optuna.load_study(study_name=out.name, storage=storage)


# Measured here with this recipe, the final val_loss of single runs at fixed learning rates:
# 1e-5 6.243, 1e-4 6.206, 1e-3 5.957, 3e-3 5.621, 5e-3 5.430, 1e-2 5.305, 2e-2 5.316,
# 3e-2 5.345, 5e-2 5.368, 1e-1 5.517, 1 10.72. The best lies in [5e-3, 5e-2]; outside it every
# rate is at least 0.2 nats worse than the best. The search over [1e-5, 1] (five decades) must
# land in that decade within 8 trials: 3 random, then 5 chosen by TPE (seed 0).
LR_RANGE = (5e-3, 5e-2)
LR_TRIALS = 8


@pytest.fixture(scope="module")
def lr_study(tmp_path_factory, recipe) -> Path:
    folder = tmp_path_factory.mktemp("lr-study")
    space = write_space(folder, "train.learning_rate: {log_uniform: [1.0e-5, 1.0]}\n")
    out = folder / "study"
    args = tune(out, recipe, space, "--trials", str(LR_TRIALS), "--seed", "0")
    assert main([*args, "--startup_trials", "3"]) == 0
    return out


@pytest.mark.slow
def test_search_finds_the_learning_rate_known_to_be_best(lr_study, capsys):
    study = load(lr_study)
    assert len(study.trials) == LR_TRIALS
    assert sorted(t.number for t in study.trials) == list(range(LR_TRIALS))
    best = study.best_trial
    assert LR_RANGE[0] <= best.params["train.learning_rate"] <= LR_RANGE[1], best.params

    # The trial's value is the final validation loss its own run logged.
    folder = lr_study / "trials" / f"trial-{best.number:04d}"
    val = [r for r in read_metrics(folder / "metrics.jsonl") if "val_loss" in r]
    assert val[-1]["step"] == STEPS and val[-1]["val_loss"] == best.value
    assert json.loads((folder / "trial.json").read_text())["state"] == "COMPLETE"
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()

    rows = (lr_study / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,") and "train.learning_rate" in rows[0]
    assert len(rows) == 1 + LR_TRIALS
    for name in ("history.png", "importances.png", "intermediate.png", "best.yaml"):
        assert (lr_study / name).stat().st_size > 1000 or name == "best.yaml", name


@pytest.mark.slow
def test_best_yaml_repeats_the_best_trial(lr_study, tmp_path):
    best = load(lr_study).best_trial
    text = (lr_study / "best.yaml").read_text()
    assert text.splitlines()[0] == f"# run: llmkit pretrain --recipe {lr_study / 'best.yaml'}"
    values = yaml.safe_load(text)
    assert values["train"]["learning_rate"] == best.params["train.learning_rate"]
    values["output_dir"] = str(tmp_path / "again")
    (tmp_path / "best.yaml").write_text(yaml.safe_dump(values))
    assert main(["pretrain", "--recipe", str(tmp_path / "best.yaml")]) == 0
    val = [r for r in read_metrics(tmp_path / "again" / "metrics.jsonl") if "val_loss" in r]
    assert val[-1]["val_loss"] == pytest.approx(best.value, rel=1e-6)


@pytest.mark.slow
def test_a_rerun_continues_the_study(lr_study, recipe, capsys):
    before = {t.number: t.value for t in load(lr_study).trials}
    space = lr_study.parent / "space.yaml"
    assert main(tune(lr_study, recipe, space, "--trials", str(LR_TRIALS), "--seed", "0")) == 0
    ran = re.findall(r"^trial (\d+): ", capsys.readouterr().out, re.M)
    assert ran == []  # the study was complete: nothing ran
    more = str(LR_TRIALS + 1)
    assert main(tune(lr_study, recipe, space, "--trials", more, "--seed", "0")) == 0
    assert re.findall(r"^trial (\d+): ", capsys.readouterr().out, re.M) == [str(LR_TRIALS)] * 2
    after = {t.number: t.value for t in load(lr_study).trials}
    assert sorted(after) == list(range(LR_TRIALS + 1))  # one more, no number twice
    assert {n: after[n] for n in before} == before  # the earlier trials are kept as they were


@pytest.mark.slow
def test_bad_values_are_pruned_before_their_last_step(tmp_path, recipe):
    # 1e-7 and 1e-6 barely move the loss from ln(512) = 6.24, 1e-7 least. With seed 0 the
    # sampler draws 1e-6, 1e-7, 1e-7, 1e-6: once the first has finished, each 1e-7 trial is
    # worse at step 5 than the median there and is stopped.
    space = write_space(tmp_path, "train.learning_rate: {choice: [3.0e-2, 1.0e-6, 1.0e-7]}\n")
    out = tmp_path / "study"
    args = tune(out, recipe, space, "--trials", "4", "--seed", "0", "--prune_startup_trials", "1")
    assert main(args) == 0
    pruned = [t for t in load(out).trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [(t.params, t.state) for t in load(out).trials]
    for t in pruned:
        assert t.params["train.learning_rate"] < 1e-5
        folder = out / "trials" / f"trial-{t.number:04d}"
        info = json.loads((folder / "trial.json").read_text())
        assert info["state"] == "PRUNED" and info["last_step"] == 5 < STEPS
        assert [r["step"] for r in read_metrics(folder / "metrics.jsonl") if "val_loss" in r] == [
            0,
            5,
        ]
        assert not (folder / "model.safetensors").exists()
    assert "PRUNED" in (out / "trials.csv").read_text()


@pytest.mark.slow
def test_two_workers_share_one_study(tmp_path, recipe):
    space = write_space(
        tmp_path,
        "train.learning_rate: {log_uniform: [1.0e-3, 1.0e-1]}\n"
        "model.config_overrides.num_hidden_layers: {uniform: [1, 2]}\n",
    )
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "llmkit", *tune(out, recipe, space, "--trials", "5")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for _ in range(2)
    ]
    logs = [w.communicate()[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    trials = load(out).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3, 4]  # the request, none twice
    by_worker = {t.user_attrs["llmkit_worker"] for t in trials}
    assert by_worker == {f"{os.uname().nodename}:{w.pid}" for w in workers}  # both did some
    for t in trials:  # a key inside a dict field, next to the recipe's other overrides
        saved = yaml.safe_load(
            (out / "trials" / f"trial-{t.number:04d}" / "llmkit_config.yaml").read_text()
        )
        overrides = saved["model"]["config_overrides"]
        assert (
            overrides["num_hidden_layers"] == t.params["model.config_overrides.num_hidden_layers"]
        )
        assert overrides["hidden_size"] == 64


@pytest.mark.parametrize(
    "space, extra, expected",
    [
        ("train.learning_rat: {uniform: [0.1, 0.2]}", [], ["'learning_rat' is not a config"]),
        ("train.warmup_ratio: {uniform: [0.2, 0.1]}", [], ["train.warmup_ratio", "swap"]),
        ("train.learning_rate: {log_uniform: [0, 1.0e-3]}", [], ["log range", "above 0"]),
        ("train.learning_rate: {uniform: [0.0, 1.0e-3]}", [], ["learning_rate=0.0", "> 0"]),
        ("train.seed: {choice: [1, two]}", [], ["train.seed", "integer"]),
        ("model: {uniform: [1, 2]}", [], ["'model' is a section"]),
        ("train.learning_rate: {uniform: [1.0e-4, 1.0e-3]}", ["--objective", "f1"], ["f1"]),
        (
            "train.learning_rate: {uniform: [1.0e-4, 1.0e-3]}",
            ["--storage", "postgresql://tuner:s3cret@127.0.0.1:9/optuna"],
            ["--storage postgresql://tuner:***@127.0.0.1:9/optuna cannot be opened"],
        ),
        (
            "train.learning_rate: {uniform: [1.0e-4, 1.0e-3]}",
            ["--storage", "sqlite:////no/such/folder/study.db"],
            ["--storage sqlite:////no/such/folder/study.db cannot be opened"],
        ),
        (
            "train.learning_rate: {uniform: [1.0e-4, 1.0e-3]}",
            ["--train.eval_steps", "0"],
            ["--pruner median needs validation passes"],
        ),
    ],
)
def test_bad_input_is_one_line_and_starts_nothing(tmp_path, recipe, capsys, space, extra, expected):
    out = tmp_path / "study"
    code = main(tune(out, recipe, write_space(tmp_path, space + "\n"), *extra))
    check_error(code, out, capsys, *expected)
    assert not any(tmp_path.glob("**/*.journal")), "no study was started"


def test_shipped_spaces_fit_their_recipes():
    spaces = sorted((REPO / "recipes" / "tune").glob("*.yaml"))
    assert {s.stem for s in spaces} >= {"pretrain_tiny", "qa_lora"}
    for space in spaces:
        words = space.read_text().splitlines()[0].split()
        assert words[:4] == ["#", "run:", "llmkit", "tune"], space.name
        recipe = REPO / words[words.index("--recipe") + 1]
        assert words[words.index("--space") + 1] == f"recipes/tune/{space.name}"
        load_space(space, config_class(pipeline_name(None, str(recipe))))


def finetune_options(tmp_path: Path, model: Path) -> list[str]:
    """conftest's finetune options (with its --model and --data), on 48 embedded QA records."""
    lines = (REPO / "data" / "tasks" / "qa" / "train.jsonl").read_text().splitlines()[:48]
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(lines) + "\n")
    return finetune_args(tmp_path / "unused", model, data)[3:]


@pytest.mark.slow
def test_a_finetune_study_maximises_a_task_metric(tmp_path, tiny_model_dir):
    space = write_space(tmp_path, "train.learning_rate: {choice: [1.0e-3, 3.0e-3]}\n")
    out = tmp_path / "study"
    args = ["tune", "--pipeline", "finetune", "--space", str(space), "--output_dir", str(out)]
    extra = ["--trials", "2", "--objective", "f1", "--pruner", "none", "--seed", "0"]
    assert main([*args, *extra, *finetune_options(tmp_path, tiny_model_dir)]) == 0
    study = load(out)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    for t in study.trials:
        metrics = read_metrics(out / "trials" / f"trial-{t.number:04d}" / "metrics.jsonl")
        assert t.value == [r for r in metrics if "val_f1" in r][-1]["val_f1"]
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert (out / "best.yaml").read_text().startswith("# run: llmkit finetune --recipe ")
    assert best["task"]["name"] == "qa" and best["model"]["name_or_path"] == str(tiny_model_dir)


def test_a_metric_the_task_does_not_report_is_refused(tmp_path, tiny_model_dir, capsys):
    space = write_space(tmp_path, "peft.r: {choice: [4, 8]}\n")
    out = tmp_path / "study"
    args = ["tune", "--pipeline", "finetune", "--space", str(space), "--output_dir", str(out)]
    code = main([*args, "--objective", "rouge1", *finetune_options(tmp_path, tiny_model_dir)])
    check_error(code, out, capsys, "--objective 'rouge1'", "val_f1", "val_exact_match")


def test_distill_recipes_are_tunable_too(tmp_path):
    """The distill recipe names its command, and distillation's own keys can be searched."""
    recipe = REPO / "recipes" / "distill" / "draft.yaml"
    assert pipeline_name(None, str(recipe)) == "distill"
    space = write_space(tmp_path, "distill.alpha: {uniform: [0.3, 1.0]}\n")
    load_space(space, config_class("distill"))
