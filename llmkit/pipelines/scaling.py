"""`llmkit scaling`: plan a ladder of pretraining runs, train it, fit the law and predict."""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path

from llmkit import config as config_lib
from llmkit.config import PretrainConfig
from llmkit.config.scaling import ScalingConfig
from llmkit.data.pack import BlockDataset
from llmkit.data.prepare import prepare_data
from llmkit.errors import ConfigError, LlmkitError
from llmkit.pipelines import pretrain
from llmkit.scaling import report
from llmkit.scaling.grid import Point, plan_points, point_config
from llmkit.scaling.results import read_point, write_point


def run(cfg: ScalingConfig) -> dict:
    cfg.validate()
    sweep = Path(cfg.output_dir)
    points, train_tokens = plan(cfg)
    report.check_enough_points(len(points), law_of(cfg))
    check_tokens(cfg, points, train_tokens)
    if cfg.plan:
        for point in points:
            print(command_of(point_config(cfg.pretrain, point, str(sweep / point.name))))
        return {"points": [p.to_dict() for p in points]}

    created = not sweep.exists()
    failures = {} if cfg.fit_only else train_points(cfg, sweep, points)
    measured = collect(sweep, points)
    if not measured:
        if created and sweep.exists():
            shutil.rmtree(sweep)  # nothing came of this invocation: leave nothing behind
        first = next(iter(failures.values()), "no point has finished; run without --fit-only")
        raise LlmkitError(f"all {len(points)} grid points failed or are missing: {first}")
    return report.fit_and_write(cfg, sweep, measured, failures, law_of(cfg))


def law_of(cfg: ScalingConfig) -> str:
    """Approach 3 when the grid varies D as well as N; otherwise L(N) at fixed D."""
    return "approach3" if cfg.grid.budgets() >= 2 else "size"


def plan(cfg: ScalingConfig) -> tuple[list[Point], int]:
    """The points (parameter counts need the real vocabulary, so the data is prepared once
    here; every point's run then finds it in the cache)."""
    data = prepare_data(
        cfg.pretrain.data,
        cfg.pretrain.tokenizer,
        trust_remote_code=cfg.pretrain.model.trust_remote_code,
        show_progress=cfg.pretrain.train.progress_bar,
    )
    train = BlockDataset(data.splits["train"])
    t = cfg.pretrain.train
    per_step = t.per_device_train_batch_size * t.gradient_accumulation_steps
    points = plan_points(
        cfg.grid, cfg.pretrain, len(data.tokenizer), per_step * cfg.pretrain.data.block_size
    )
    if not points:
        raise ConfigError(
            f"grid: no point has grid.min_steps {cfg.grid.min_steps} steps; raise grid.flops"
        )
    return points, len(train) * cfg.pretrain.data.block_size


def check_tokens(cfg: ScalingConfig, points: list[Point], train_tokens: int) -> None:
    worst = max(points, key=lambda p: p.tokens)
    if worst.tokens > train_tokens and not cfg.grid.allow_repeat:
        raise ConfigError(
            f"grid point {worst.name} needs {worst.tokens:,} tokens but the training split holds "
            f"{train_tokens:,}; lower its token budget or set grid.allow_repeat true"
        )


def train_points(cfg: ScalingConfig, sweep: Path, points: list[Point]) -> dict[str, str]:
    """Each unfinished point as an ordinary pretraining run; failures are recorded, not fatal."""
    failures = {}
    todo = [p for p in points if read_point(sweep / p.name, p.steps) is None]
    print(f"scaling: {len(points)} points, {len(points) - len(todo)} already trained")
    for i, point in enumerate(todo, 1):
        folder = sweep / point.name
        print(f"\n[{i}/{len(todo)}] {point.name}: N={point.n:,} D={point.tokens:,} -> {folder}")
        run_cfg = point_config(cfg.pretrain, point, str(folder))
        run_cfg.overwrite = True  # an unfinished earlier attempt of this point is replaced
        start = time.perf_counter()
        try:
            pretrain.run(run_cfg)
        except LlmkitError as e:
            failures[point.name] = str(e)
            print(f"point {point.name} failed: {e}")
            shutil.rmtree(folder, ignore_errors=True)
            continue
        write_point(folder, time.perf_counter() - start)
    return failures


def collect(sweep: Path, points: list[Point]) -> list[dict]:
    out = []
    for point in points:
        measured = read_point(sweep / point.name, point.steps)
        if measured is not None:
            out.append(point.to_dict() | measured)
    return out


def command_of(cfg: PretrainConfig) -> str:
    """The `llmkit pretrain` command of a point: every field that differs from the default."""
    defaults = flatten(config_lib.to_dict(PretrainConfig()))
    options = []
    for key, value in flatten(config_lib.to_dict(cfg)).items():
        if key in ("overwrite",) or defaults.get(key) == value:
            continue
        options += [f"--{key}", shlex.quote(format_value(value))]
    return " ".join(["llmkit", "pretrain", *options])


def flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and key != "config_overrides":
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)  # JSON is YAML flow style, which the option parser reads
    return str(value)
