"""llmkit: raw text to a pretrained causal LM, a task fine-tune, an evaluation report."""

from llmkit.config import PretrainConfig

__version__ = "0.1.0"


def pretrain(cfg: PretrainConfig):
    """Run the pretraining pipeline from a config (the same as ``llmkit pretrain``)."""
    from llmkit.pipelines.pretrain import run

    return run(cfg)


__all__ = ["PretrainConfig", "pretrain", "__version__"]
