"""int8 for CPU inference through torchao, saved so plain transformers loads it back.

transformers' ``TorchAoConfig`` runs torchao's ``quantize_`` on the linear layers while
loading, and its safetensors serialization stores torchao's ``Int8Tensor`` weights with a
``quantization_config`` in config.json, so ``from_pretrained(DIR)`` rebuilds them (with torchao
installed; it is what runs the int8 kernels).

The output head is quantized too unless asked not to (``TorchAoConfig`` skips it by default):
in a small model it is a large share of a decoding step (a 4k x 256 head took 0.4 ms of the
5M ``make pretrain`` model's 1.9 ms of kernels per token once the rest was int8), and its
perplexity cost is measured in every report. A head tied to the input embeddings stays float:
transformers keeps tied modules out of the conversion.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from llmkit.errors import LlmkitError

METHODS = {
    "int8-dynamic": "Int8DynamicActivationInt8WeightConfig",  # int8 weights and activations
    "int8-weight": "Int8WeightOnlyConfig",  # int8 weights, float activations
}


def check_method(method: str) -> None:
    if method not in METHODS:
        raise LlmkitError(f"quantize --method {method!r}: choose one of {', '.join(METHODS)}")
    try:
        import torchao  # noqa: F401
    except ImportError:
        raise LlmkitError("quantize needs torchao: pip install 'llmkit[export]'") from None


def torchao_config(method: str):
    from torchao import quantization

    return getattr(quantization, METHODS[method])()


def load_quantized(
    name_or_path: str | Path,
    method: str,
    trust_remote_code: bool = False,
    quantize_head: bool = True,
) -> PreTrainedModel:
    """The model with its linear layers (and, if untied and asked, its head) quantized by
    torchao as it loads."""
    from transformers import TorchAoConfig

    check_method(method)
    # [] converts every linear layer transformers allows (tied heads stay out); None is its
    # default list, which names the output head
    skip = [] if quantize_head else None
    model = AutoModelForCausalLM.from_pretrained(
        str(name_or_path),
        quantization_config=TorchAoConfig(torchao_config(method), modules_to_not_convert=skip),
        dtype=torch.float32,
        trust_remote_code=trust_remote_code,
    )
    return model.eval()


def folder_size(path: Path) -> int:
    """Bytes of the weight files (what the quantization changes)."""
    return sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))


def head_precision(model: PreTrainedModel, quantize_head: bool) -> str:
    """What the output head holds after quantization, and why, for the report and card."""
    head = model.get_output_embeddings()
    if type(head.weight).__name__ == "Int8Tensor":
        return "int8"
    if not quantize_head:
        return "float (--keep_head_float)"
    if getattr(model.config, "tie_word_embeddings", False):
        return "float (tied to the input embeddings)"
    return "float"
