"""Head diagnostics with a standard definition, and the in-context copy score.

All of them run on repeated random token sequences ``[start] x_1..x_L x_1..x_L`` (Olsson et al.
2022, "In-context Learning and Induction Heads"): random tokens cannot be predicted from
training statistics, so anything the model gets right on the second copy it copied from the
first. Per head:

- previous-token score: mean attention from each position to the one before it;
- induction score: mean attention from a token in the second copy to the token that followed
  its first occurrence (the key ``L`` positions back, plus one);
- entropy: mean entropy (nats) of the attention rows, low for a sharp head.

For the model: the mean next-token loss on the first copy and on the second copy; their
difference (``copy_score``, nats) is ~0 for a model that cannot copy and grows to about
ln(vocabulary) for a perfect copier. ``copy_score`` needs logits only (any attention
kernel), so pretraining logs it at each evaluation for the price of one forward pass.
"""

from __future__ import annotations

import math

import torch

from llmkit.inspect.attention import capture


def start_token(tokenizer) -> int | None:
    """What begins a document as the model saw it: the BOS the tokenizer adds, else EOS
    (llmkit packs documents with EOS between them)."""
    probe = tokenizer("a")["input_ids"]
    if tokenizer.bos_token_id is not None and probe and probe[0] == tokenizer.bos_token_id:
        return tokenizer.bos_token_id
    return tokenizer.eos_token_id


def repeated_tokens(
    tokenizer, length: int, batch: int, seed: int = 0, vocab_size: int | None = None
) -> torch.Tensor:
    """``(batch, start + 2 * length)`` ids: random ordinary tokens, repeated once."""
    vocab = vocab_size or len(tokenizer)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    allowed = torch.ones(vocab, dtype=torch.bool)
    allowed[special[special < vocab]] = False
    pool = allowed.nonzero().squeeze(1)
    gen = torch.Generator().manual_seed(seed)
    seq = pool[torch.randint(0, len(pool), (batch, length), generator=gen)]
    parts = [seq, seq]
    first = start_token(tokenizer)
    if first is not None:
        parts.insert(0, torch.full((batch, 1), first, dtype=torch.long))
    return torch.cat(parts, dim=1)


def sequence_length(positions: int | None, wanted: int) -> int:
    """Copy length that fits the model's positions with the start token."""
    if positions is None:
        return wanted
    return max(2, min(wanted, (positions - 1) // 2))


@torch.inference_mode()
def copy_losses(model, ids: torch.Tensor, length: int) -> dict[str, float]:
    """Mean next-token loss on each copy (its first token excluded: nothing predicts it)."""
    device = next(model.parameters()).device
    logits = model(input_ids=ids.to(device)).logits.float()
    offset = ids.shape[1] - 2 * length  # the start token, if any
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    nll = -logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)  # predicts t+1
    # nll[:, t] is the loss of token t + 1; copy c's tokens 2..L sit at offset + c*L + 1..
    first = nll[:, offset : offset + length - 1]
    second = nll[:, offset + length : offset + 2 * length - 1]
    a, b = first.mean().item(), second.mean().item()
    return {"copy_loss_first": a, "copy_loss_second": b, "copy_score": a - b}


def copy_score(
    model, tokenizer, *, length: int = 32, batch: int = 8, seed: int = 0
) -> dict[str, float]:
    """The training-time metric: a fixed seeded batch, one forward pass. ``model`` may be
    wrapped (DDP/FSDP): every process makes the same call, as for the validation loss."""
    ids = repeated_tokens(tokenizer, length, batch, seed)
    return copy_losses(model, ids, length)


def copy_metric(model, tokenizer, block_size: int) -> dict[str, float]:
    """What the training loops log: copies of up to 32 tokens that fit a training block."""
    length = sequence_length(block_size, 32)
    return {"copy_score": copy_score(model, tokenizer, length=length)["copy_score"]}


def attention_scores(attn: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
    """Per-head scores ``(layers, heads)`` from weights ``(batch, layers, heads, q, k)``."""
    total = attn.shape[-1]
    offset = total - 2 * length
    q = torch.arange(1, total)
    prev = attn[..., q, q - 1].mean(dim=(0, -1))
    # a query at the second copy's j-th token looks at the token after the first j-th one
    j = torch.arange(0, length - 1)
    induction = attn[..., offset + length + j, offset + j + 1].mean(dim=(0, -1))
    rows = attn[..., 1:, :].clamp_min(1e-12)
    entropy = -(rows * rows.log()).sum(-1).mean(dim=(0, -1))
    return {"previous_token": prev, "induction": induction, "entropy": entropy}


def head_scores(
    model,
    tokenizer,
    *,
    length: int = 50,
    batch: int = 16,
    seed: int = 0,
    vocab_size: int | None = None,
) -> dict:
    """Every head's scores plus the model's copy losses, as plain lists for JSON
    (random tokens from the first ``vocab_size`` ids; default all the tokenizer's)."""
    vocab = min(vocab_size or len(tokenizer), model.get_input_embeddings().num_embeddings)
    ids = repeated_tokens(tokenizer, length, batch, seed, vocab)
    attn = capture(model, ids)
    scores = attention_scores(attn, length)
    return {
        "sequence": {"length": length, "batch": batch, "seed": seed, "tokens": ids.shape[1]},
        "layers": attn.shape[1],
        "heads": attn.shape[2],
        **{k: v.tolist() for k, v in scores.items()},
        **copy_losses(model, ids, length),
        "max_entropy": math.log(ids.shape[1]),
    }
