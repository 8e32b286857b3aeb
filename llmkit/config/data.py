"""The configuration of `llmkit data prepare`."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmkit.config.schema import option
from llmkit.config.sections import DataConfig, TokenizerConfig
from llmkit.errors import ConfigError


@dataclass
class DataPrepareConfig:
    """Sources, document steps and packing (``data``) and the tokenizer to train or load."""

    output_dir: str = option("runs/data", "folder for the packed splits, manifest and report")
    overwrite: bool = option(False, "replace a dataset already prepared in output_dir")
    trust_remote_code: bool = option(False, "allow tokenizer code from the Hub (off: safe)")
    show_progress: bool = option(True, "show progress bars while reading and tokenizing")
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)

    def validate(self) -> None:
        if not self.data.train_files and not self.data.dataset_name:
            raise ConfigError(
                "no data: set data.train_files (files, folders, globs) or data.dataset_name"
            )
        if self.data.block_size < 2:
            raise ConfigError(f"data.block_size must be >= 2, got {self.data.block_size}")
        if not self.tokenizer.name_or_path and self.tokenizer.vocab_size < 300:
            raise ConfigError("tokenizer.vocab_size must be >= 300 (256 bytes plus merges)")
