"""Typed run configuration: dataclasses are the one schema.

``schema`` holds the machinery (YAML recipes, dotted overrides, validation, saving);
``sections`` the parts shared by pipelines; one module per command holds its top-level config.
"""

from llmkit.config.data import DataPrepareConfig
from llmkit.config.evaluate import EvaluateConfig, PerplexityConfig
from llmkit.config.finetune import FinetuneConfig
from llmkit.config.pretrain import PretrainConfig
from llmkit.config.schema import (
    CONFIG_FILE,
    build,
    coerce,
    fields_of,
    from_dict,
    is_section,
    load_recipe,
    option,
    save,
    set_dotted,
    to_dict,
)
from llmkit.config.sections import DataConfig, ModelConfig, TokenizerConfig, TrainConfig

__all__ = [
    "CONFIG_FILE",
    "DataConfig",
    "DataPrepareConfig",
    "EvaluateConfig",
    "FinetuneConfig",
    "ModelConfig",
    "PerplexityConfig",
    "PretrainConfig",
    "TokenizerConfig",
    "TrainConfig",
    "build",
    "coerce",
    "fields_of",
    "from_dict",
    "is_section",
    "load_recipe",
    "option",
    "save",
    "set_dotted",
    "to_dict",
]
