"""The configuration of `llmkit scaling`: a base pretraining recipe plus a grid of points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmkit.config.pretrain import PretrainConfig
from llmkit.config.schema import option
from llmkit.errors import ConfigError

SIZE_KEYS = ("name", "preset", "learning_rate")  # the other keys of a size are model fields


@dataclass
class GridConfig:
    """Model sizes x token budgets, or sizes x IsoFLOP compute budgets (D = C / 6N)."""

    sizes: list[dict[str, Any]] = option(
        [],
        "model sizes: mappings of model config fields (hidden_size, num_hidden_layers, ...) "
        "with an optional name, preset and learning_rate",
    )
    widths: list[int] = option(
        [], "hidden sizes whose depth, heads and MLP width follow the rules below (not sizes)"
    )
    aspect_ratio: float = option(32.0, "widths rule: hidden_size / num_hidden_layers")
    head_dim: int = option(32, "widths rule: hidden_size / num_attention_heads")
    mlp_ratio: float = option(2.6875, "widths rule: intermediate_size / hidden_size")
    tokens: list[int] = option([], "token budgets D; every size trains on each")
    tokens_per_parameter: list[float] = option(
        [], "token budgets as multiples of N (20 is Chinchilla's rule of thumb)"
    )
    flops: list[float] = option([], "IsoFLOP compute budgets C; every size trains on C / 6N")
    parameters: str = option(
        "non_embedding",
        "the N that is fitted and enters C = 6ND",
        choices=("non_embedding", "total"),
    )
    allow_repeat: bool = option(
        False, "allow points that need more tokens than the training split holds (epochs > 1)"
    )
    min_steps: int = option(20, "IsoFLOP points with fewer optimizer steps are left out")

    def budgets(self) -> int:
        return len(self.tokens) + len(self.tokens_per_parameter) + len(self.flops)

    def validate(self) -> None:
        if bool(self.sizes) == bool(self.widths):
            raise ConfigError("set exactly one of grid.sizes and grid.widths")
        kinds = [k for k in ("tokens", "tokens_per_parameter", "flops") if getattr(self, k)]
        if len(kinds) != 1:
            raise ConfigError(
                "set exactly one of grid.tokens, grid.tokens_per_parameter and grid.flops"
            )
        for name in (*kinds, "widths"):
            if any(v <= 0 for v in getattr(self, name)):
                raise ConfigError(f"grid.{name} must all be > 0")
        for i, size in enumerate(self.sizes):
            if not isinstance(size, dict):
                raise ConfigError(f"grid.sizes[{i}] must be a mapping of model fields")
        if self.aspect_ratio <= 0 or self.head_dim < 1 or self.mlp_ratio <= 0:
            raise ConfigError("grid.aspect_ratio, grid.head_dim and grid.mlp_ratio must be > 0")
        if self.min_steps < 1:
            raise ConfigError("grid.min_steps must be >= 1")


@dataclass
class FitConfig:
    bootstrap: int = option(200, "bootstrap resamples for the 95 percent intervals (0: none)")
    holdout: int = option(1, "largest sizes left out of the holdout fit and predicted")
    seed: int = option(0, "seed of the bootstrap resamples")


@dataclass
class ScalingConfig:
    output_dir: str = option("runs/scaling", "the sweep folder: one pretraining run per point")
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    plan: bool = option(False, "print one `llmkit pretrain` command per point and stop")
    fit_only: bool = option(False, "fit the points already trained; train nothing")
    budget_flops: float | None = option(
        None, "compute budget C: print the compute-optimal N and D with intervals"
    )

    cli_aliases = {"fit-only": "fit_only", "budget-flops": "budget_flops"}

    def validate(self) -> None:
        self.pretrain.validate()
        self.grid.validate()
        if self.plan and self.fit_only:
            raise ConfigError("--plan and --fit-only exclude each other; pass one")
        if self.fit.bootstrap < 0 or self.fit.holdout < 0:
            raise ConfigError("fit.bootstrap and fit.holdout must be >= 0")
        if self.budget_flops is not None:
            if not self.budget_flops > 0:
                raise ConfigError(f"--budget-flops must be > 0, got {self.budget_flops}")
            if self.grid.budgets() < 2:
                raise ConfigError(
                    "--budget-flops needs a law in N and D: give the grid two or more token "
                    "budgets (grid.tokens, grid.tokens_per_parameter) or IsoFLOP grid.flops"
                )
