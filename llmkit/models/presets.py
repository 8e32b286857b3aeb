"""Llama-style size presets for models trained from scratch."""

from __future__ import annotations

from typing import Any

from llmkit.registry import Registry

PRESETS: Registry[dict[str, Any]] = Registry("model preset")

PRESETS.add(
    "tiny",
    dict(  # about 5M parameters with a 4k vocabulary
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
    ),
)
PRESETS.add(
    "small",
    dict(  # about 25M parameters with an 8k vocabulary
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=1024,
    ),
)
PRESETS.add(
    "base",
    dict(  # about 125M parameters with a 32k vocabulary
        hidden_size=768,
        intermediate_size=2560,
        num_hidden_layers=12,
        num_attention_heads=12,
        num_key_value_heads=12,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    ),
)
