"""The model to export or quantize: a model folder, a LoRA run (merged first) or a Hub name."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from llmkit.config import ModelConfig
from llmkit.data.tokenizer import load_tokenizer
from llmkit.errors import LlmkitError
from llmkit.models.load import build_model, loading_bar, resolve_config
from llmkit.models.peft import adapter_base, is_adapter_dir, load_adapter_model, merge_adapter


@dataclass
class Source:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    #: what was loaded, for the printed summary and the model card
    description: str
    name: str


def check_source(run_dir: str) -> None:
    """A local path must be a model or adapter folder; anything else is taken as a Hub name."""
    path = Path(run_dir)
    if path.exists():
        if not path.is_dir() or not ((path / "config.json").is_file() or is_adapter_dir(path)):
            raise LlmkitError(
                f"RUN_DIR {run_dir}: not a model folder (no config.json or adapter_config.json); "
                "give the output_dir of a llmkit run, a save_pretrained folder or a Hub name"
            )
    elif run_dir.startswith((".", "/", "~")) or run_dir.count("/") > 1:
        raise LlmkitError(f"RUN_DIR {run_dir}: no such folder; give a model folder or a Hub name")


def source_config(run_dir: str, trust_remote_code: bool = False) -> PretrainedConfig:
    """The model's config (an adapter's base), to refuse what cannot be done before loading."""
    check_source(run_dir)
    name = adapter_base(run_dir) if is_adapter_dir(run_dir) else run_dir
    return resolve_config(
        ModelConfig(preset=None, name_or_path=name, trust_remote_code=trust_remote_code)
    )


def load_source(run_dir: str, trust_remote_code: bool = False) -> Source:
    """Weights in float32 on the CPU; a LoRA adapter is merged into its base (as `llmkit merge`)."""
    check_source(run_dir)
    tokenizer = load_tokenizer(run_dir, trust_remote_code)
    name = Path(run_dir).name or run_dir
    with loading_bar(False):
        if is_adapter_dir(run_dir):
            model = merge_adapter(load_adapter_model(run_dir, tokenizer, trust_remote_code))
            what = f"the LoRA adapter {run_dir} merged into {adapter_base(run_dir)}"
        else:
            cfg = ModelConfig(
                preset=None, name_or_path=run_dir, trust_remote_code=trust_remote_code
            )
            model, what = build_model(cfg, tokenizer, seed=0), run_dir
    return Source(model.float().eval(), tokenizer, what, name)


@contextmanager
def saved_folder(source: Source, run_dir: str):
    """A folder holding the source as saved weights: run_dir itself unless it was merged."""
    if not is_adapter_dir(run_dir):
        yield run_dir
        return
    with tempfile.TemporaryDirectory() as tmp:
        source.model.save_pretrained(tmp, safe_serialization=True)
        source.tokenizer.save_pretrained(tmp)
        yield tmp
