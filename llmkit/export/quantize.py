"""int8 for CPU inference through torchao, saved so plain transformers loads it back.

transformers' ``TorchAoConfig`` runs torchao's ``quantize_`` on every linear layer but the
output head while loading, and its safetensors serialization stores torchao's ``Int8Tensor``
weights with a ``quantization_config`` in config.json, so ``from_pretrained(DIR)`` rebuilds
them (with torchao installed; it is what runs the int8 kernels).
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
    name_or_path: str | Path, method: str, trust_remote_code: bool = False
) -> PreTrainedModel:
    """The model with its linear layers quantized by torchao as it loads."""
    from transformers import TorchAoConfig

    check_method(method)
    model = AutoModelForCausalLM.from_pretrained(
        str(name_or_path),
        quantization_config=TorchAoConfig(torchao_config(method)),
        dtype=torch.float32,
        trust_remote_code=trust_remote_code,
    )
    return model.eval()


def folder_size(path: Path) -> int:
    """Bytes of the weight files (what the quantization changes)."""
    return sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
