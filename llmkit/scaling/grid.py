"""The points of a sweep: model sizes x token budgets, or sizes x IsoFLOP compute budgets.

Parameter counts come from the model built on PyTorch's meta device: every architecture
counts right and no weights are allocated, so a 70B size plans as fast as a tiny one.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from llmkit.config.pretrain import PretrainConfig
from llmkit.config.scaling import SIZE_KEYS, GridConfig
from llmkit.config.sections import ModelConfig
from llmkit.errors import ConfigError
from llmkit.models.load import resolve_config
from llmkit.models.presets import PRESETS


@dataclass
class Size:
    name: str
    preset: str | None
    overrides: dict[str, Any]
    learning_rate: float | None = None


@dataclass
class Point:
    name: str
    size: str
    n_total: int
    n_non_embedding: int
    n: int  # the N that is fitted (non-embedding or total, as grid.parameters says)
    steps: int
    tokens: int  # D planned: steps x tokens per step
    flops_budget: float | None  # the IsoFLOP profile the point belongs to
    model: dict[str, Any]  # model.preset and model.config_overrides of the run
    learning_rate: float | None

    @property
    def flops(self) -> float:
        return 6.0 * self.n * self.tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"flops": self.flops}


def sizes_of(grid: GridConfig, base: ModelConfig) -> list[Size]:
    """Explicit sizes, or widths with depth, heads and MLP width from the grid's rules."""
    if grid.sizes:
        out = []
        for i, spec in enumerate(grid.sizes):
            fields = {k: v for k, v in spec.items() if k not in SIZE_KEYS}
            if "hidden_size" in fields and "head_dim" not in fields:
                # A config built from a preset keeps the preset's head_dim when only
                # hidden_size is overridden; derive it from this size's own heads.
                heads = fields.get(
                    "num_attention_heads",
                    PRESETS.get(spec.get("preset", base.preset) or "tiny")["num_attention_heads"],
                )
                fields["head_dim"] = fields["hidden_size"] // heads
            lr = spec.get("learning_rate")
            out.append(
                Size(
                    str(spec.get("name", f"s{i}")),
                    spec.get("preset", base.preset),
                    {**base.config_overrides, **fields},
                    float(lr) if lr is not None else None,
                )
            )
        return out
    out = []
    for width in grid.widths:
        heads = max(1, round(width / grid.head_dim))
        if width % heads or width < grid.head_dim:
            raise ConfigError(
                f"grid.widths: {width} is not divisible into heads of {grid.head_dim}; "
                "choose widths that are multiples of grid.head_dim"
            )
        fields = dict(
            hidden_size=width,
            num_hidden_layers=max(1, round(width / grid.aspect_ratio)),
            num_attention_heads=heads,
            num_key_value_heads=heads,
            head_dim=width // heads,
            intermediate_size=max(8, 8 * round(width * grid.mlp_ratio / 8)),
        )
        out.append(Size(f"w{width}", base.preset, {**base.config_overrides, **fields}))
    return out


def count_parameters(model: ModelConfig, vocab_size: int) -> tuple[int, int]:
    """(total, non-embedding) parameters: embeddings are the input table plus an untied head."""
    config = resolve_config(model, vocab_size)
    try:
        with torch.device("meta"):
            net = AutoModelForCausalLM.from_config(config)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ConfigError(
            f"model {model.config_overrides}: cannot be built ({str(e).splitlines()[0]}); "
            "fix the size's fields"
        ) from None
    total = sum(p.numel() for p in net.parameters())  # shared (tied) tensors count once
    embedding = {id(p): p.numel() for p in net.get_input_embeddings().parameters()}
    head = net.get_output_embeddings()
    if head is not None:
        embedding |= {id(p): p.numel() for p in head.parameters()}
    return total, total - sum(embedding.values())


def plan_points(
    grid: GridConfig, base: PretrainConfig, vocab_size: int, tokens_per_step: int
) -> list[Point]:
    """Every point of the grid, smallest size first, with its steps and parameter counts."""
    points = []
    for size in sizes_of(grid, base.model):
        model = ModelConfig(
            preset=size.preset,
            name_or_path=None,
            config_overrides=size.overrides,
            trust_remote_code=base.model.trust_remote_code,
        )
        total, non_embedding = count_parameters(model, vocab_size)
        n = non_embedding if grid.parameters == "non_embedding" else total
        if n <= 0:
            raise ConfigError(f"grid size {size.name}: no non-embedding parameters")
        targets = (
            [(float(d), None) for d in grid.tokens]
            + [(r * n, None) for r in grid.tokens_per_parameter]
            + [(c / (6 * n), c) for c in grid.flops]
        )
        for tokens, budget in targets:
            steps = max(1, round(tokens / tokens_per_step))
            if budget is not None and steps < grid.min_steps:
                continue
            label = f"C{budget:.2e}" if budget is not None else f"D{steps * tokens_per_step}"
            points.append(
                Point(
                    name=f"{size.name}-{label}".replace("+", ""),
                    size=size.name,
                    n_total=total,
                    n_non_embedding=non_embedding,
                    n=n,
                    steps=steps,
                    tokens=steps * tokens_per_step,
                    flops_budget=budget,
                    model=dict(preset=size.preset, config_overrides=copy.deepcopy(size.overrides)),
                    learning_rate=size.learning_rate,
                )
            )
    points.sort(key=lambda p: (p.n, p.tokens))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ConfigError("grid: two points share a name; give every size a distinct name")
    return points


def point_config(base: PretrainConfig, point: Point, output_dir: str) -> PretrainConfig:
    """The ordinary pretraining config of one point."""
    cfg = copy.deepcopy(base)
    cfg.output_dir = output_dir
    cfg.model.preset = point.model["preset"]
    cfg.model.name_or_path = None
    cfg.model.config_overrides = copy.deepcopy(point.model["config_overrides"])
    cfg.train.max_steps = point.steps
    if point.learning_rate is not None:
        cfg.train.learning_rate = point.learning_rate
    return cfg
