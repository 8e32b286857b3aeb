"""An exported or quantized model against its original: logits and greedy outputs."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: fixed prompts: prose, code, digits, non-ASCII, a special token in the text
PROMPTS = (
    "To be, or not to be, that is the question:",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "def add(a, b):\n    return a + b  # 12345 + 678",
    "Café naïve — ½ größer 😀 日本語",
    "<|bos|>The end.<|eos|> And again",
)


@torch.inference_mode()
def compare_logits(
    reference: PreTrainedModel, other: PreTrainedModel, ids: list[list[int]]
) -> dict[str, float]:
    """Max |difference|, that over the max |logit| of the reference, and top-1 agreement."""
    abs_diff, scale, top1, positions = 0.0, 0.0, 0, 0
    for row in ids:
        x = torch.tensor([row])
        a = reference(input_ids=x).logits[0].float()
        b = other(input_ids=x).logits[0].float()
        abs_diff = max(abs_diff, (a - b).abs().max().item())
        scale = max(scale, a.abs().max().item())
        top1 += (a.argmax(-1) == b.argmax(-1)).sum().item()
        positions += len(row)
    return {
        "max_abs_diff": abs_diff,
        "max_rel_diff": abs_diff / scale if scale else abs_diff,
        "top1_agreement": top1 / positions,
    }


@torch.inference_mode()
def greedy_texts(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int = 24
) -> list[list[int]]:
    """Greedy continuations (new token ids) of each prompt, one at a time (no padding)."""
    outputs = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        outputs.append(out[0, ids.shape[1] :].tolist())
    return outputs
