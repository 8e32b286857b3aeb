"""The configuration of `llmkit pretrain`."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmkit.config.schema import option
from llmkit.config.sections import (
    DataConfig,
    HubConfig,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
)
from llmkit.errors import ConfigError


@dataclass
class PretrainConfig:
    output_dir: str = option("runs/pretrain", "where the model, tokenizer, metrics and plots go")
    overwrite: bool = option(False, "replace an existing run in output_dir")
    sample_prompt: str = option("The", "prompt of the greedy sample printed at the end")
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    def validate(self) -> None:
        self.train.validate()
        self.hub.validate()
        if self.data.block_size < 2:
            raise ConfigError("data.block_size must be >= 2")
        if not 0 <= self.data.validation_split < 1:
            raise ConfigError("data.validation_split must be in [0, 1)")
        if self.tokenizer.vocab_size < 300:
            raise ConfigError("tokenizer.vocab_size must be >= 300 (256 bytes plus merges)")
        if not self.data.train_files and not self.data.dataset_name:
            raise ConfigError(
                "no data: set data.train_files (files, folders, globs) or data.dataset_name"
            )
        if self.model.preset is None and self.model.name_or_path is None:
            raise ConfigError("set model.preset or model.name_or_path")
