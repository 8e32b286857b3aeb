"""llmkit: raw text to a pretrained causal LM, a task fine-tune, an evaluation report."""

from llmkit.config import EvaluateConfig, FinetuneConfig, PretrainConfig
from llmkit.version import __version__


def finetune(cfg: FinetuneConfig):
    """Run the fine-tuning pipeline from a config (the same as ``llmkit finetune``)."""
    from llmkit.pipelines.finetune import run

    return run(cfg)


def pretrain(cfg: PretrainConfig):
    """Run the pretraining pipeline from a config (the same as ``llmkit pretrain``)."""
    from llmkit.pipelines.pretrain import run

    return run(cfg)


def evaluate(cfg: EvaluateConfig | None = None, /, **fields):
    """Run the evaluation pipeline (the same as ``llmkit evaluate``).

    Pass a config, or its fields: ``evaluate(model="runs/qa", task="qa", data=["test.jsonl"])``.
    """
    from llmkit.config import from_dict
    from llmkit.pipelines.evaluate import run

    if cfg is None:
        cfg = from_dict(EvaluateConfig, fields)
    elif fields:
        raise TypeError("pass either a config or its fields, not both")
    return run(cfg)


__all__ = [
    "EvaluateConfig",
    "FinetuneConfig",
    "PretrainConfig",
    "evaluate",
    "finetune",
    "pretrain",
    "__version__",
]
