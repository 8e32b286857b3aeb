"""Recipes, overrides and validation: bad keys and values fail before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmkit import config as config_lib
from llmkit.cli import main
from llmkit.config import PretrainConfig
from llmkit.errors import ConfigError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_defaults_recipe_and_overrides_in_that_order(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "train:\n  learning_rate: 2.0e-4\n  max_steps: 7\ndata:\n  train_files: [a.txt]\n"
    )
    cfg = config_lib.build(
        PretrainConfig, recipe, {"train.max_steps": "9", "model.preset": "small"}
    )
    assert cfg.train.learning_rate == 2e-4  # from the recipe
    assert cfg.train.max_steps == 9  # override wins, converted from the CLI string
    assert cfg.model.preset == "small"
    assert cfg.train.per_device_train_batch_size == 16  # default
    assert cfg.data.train_files == ["a.txt"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train.learnig_rate": "1"}, "unknown key 'train.learnig_rate'"),
        ({"train.max_steps": "ten"}, "train.max_steps must be an integer"),
        ({"train.max_steps": "-3"}, "train.max_steps must be >= 1"),
        (
            {"train.mixed_precision": "fp8"},
            "train.mixed_precision must be one of auto, no, fp16, bf16",
        ),
        ({"train.torch_compile": "maybe"}, "train.torch_compile must be one of auto, true, false"),
        ({"data.validation_split": "1.5"}, "data.validation_split must be in [0, 1)"),
        ({"data": "x"}, "data must be a mapping"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        config_lib.build(PretrainConfig, None, {"data.train_files": "a.txt", **overrides})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_yaml_floats_without_a_dot_are_accepted(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  learning_rate: 1e-3\ndata:\n  train_files: a.txt\n")
    cfg = config_lib.build(PretrainConfig, recipe, {})
    assert cfg.train.learning_rate == 1e-3 and cfg.data.train_files == ["a.txt"]


@pytest.mark.parametrize("path", sorted(RECIPES.glob("pretrain/*.yaml")), ids=lambda p: p.name)
def test_every_pretrain_recipe_parses_and_says_how_to_run_it(path):
    assert path.read_text().startswith(
        f"# run: llmkit pretrain --recipe recipes/pretrain/{path.name}"
    )
    cfg = config_lib.build(PretrainConfig, path, {})
    assert cfg.model.preset or cfg.model.name_or_path


def test_saved_config_round_trips(tmp_path):
    cfg = config_lib.build(PretrainConfig, None, {"data.train_files": "x.txt", "train.seed": "3"})
    config_lib.save(cfg, tmp_path)
    again = config_lib.build(PretrainConfig, tmp_path / config_lib.CONFIG_FILE, {})
    assert again == cfg


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as done:
        main(["pretrain", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--train.learning_rate", "--data.block_size", "--model.preset", "--resume"):
        assert option in text
    assert "peak learning rate (default: 0.001)" in text
