"""The configuration of `llmkit distill`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from llmkit.config.schema import option
from llmkit.config.sections import DataConfig, HubConfig, ModelConfig, TrainConfig
from llmkit.errors import ConfigError


@dataclass
class DistillSection:
    alpha: float = option(0.5, "weight of the KL term; 1 - alpha goes to cross-entropy")
    temperature: float = option(2.0, "softmax temperature of teacher and student in the KL")
    cache_topk: int = option(
        0, "store the teacher's top-K log-probs once and train from them (0: teacher on the fly)"
    )
    cache_batch_size: int = option(16, "blocks per teacher forward while filling the cache")


@dataclass
class DistillConfig:
    teacher: str | None = option(None, "teacher model folder or Hub name (its tokenizer is used)")
    output_dir: str = option("runs/distill", "where the student, metrics and card go")
    overwrite: bool = option(False, "replace an existing run in output_dir")
    sample_prompt: str = option("The", "prompt of the greedy sample printed at the end")
    distill: DistillSection = field(default_factory=DistillSection)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    cli_aliases: ClassVar[dict[str, str]] = {}

    def validate(self) -> None:
        self.train.validate()
        self.hub.validate()
        if not self.teacher:
            raise ConfigError("no teacher: pass --teacher (a model folder or Hub name)")
        if not self.data.train_files and not self.data.dataset_name:
            raise ConfigError(
                "no data: set data.train_files (files, folders, globs) or data.dataset_name"
            )
        if self.model.preset is None and self.model.name_or_path is None:
            raise ConfigError("set model.preset or model.name_or_path for the student")
        d = self.distill
        if not 0 <= d.alpha <= 1:
            raise ConfigError(f"distill.alpha must be in [0, 1], got {d.alpha}")
        if d.temperature <= 0:
            raise ConfigError(f"distill.temperature must be > 0, got {d.temperature}")
        if d.cache_topk < 0 or d.cache_batch_size < 1:
            raise ConfigError("distill.cache_topk must be >= 0 and cache_batch_size >= 1")
        if self.data.block_size < 2:
            raise ConfigError("data.block_size must be >= 2")
