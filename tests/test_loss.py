"""The chunked cross-entropy against torch's and transformers' own losses, and in training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_model, pretrain_args
from peft import LoraConfig, get_peft_model
from transformers import MixtralConfig, MixtralForCausalLM

from llmkit.cli import main
from llmkit.training.logging import read_metrics
from llmkit.training.loss import causal_lm_loss, chunked_cross_entropy, has_plain_causal_lm_loss


def test_value_and_gradient_equal_torchs_cross_entropy_over_many_blocks():
    torch.manual_seed(0)
    rows, vocab = 1000, 300
    logits = (torch.randn(rows, vocab) * 4).requires_grad_()
    targets = torch.randint(0, vocab, (rows,))
    targets[::7] = -100
    n = torch.tensor(900)  # a global count, as under accumulation: not this batch's own
    expected = F.cross_entropy(logits, targets, ignore_index=-100, reduction="sum") / n
    expected.backward()
    want = logits.grad.clone()

    mine = logits.detach().clone().requires_grad_()
    # 16 rows of 300 per block: 63 blocks, the last one short
    got = chunked_cross_entropy(mine * 1.0, targets, n, block_elements=16 * vocab)
    (got * 3.0).backward()  # an incoming gradient other than 1 (the loop scales by world size)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(mine.grad, 3.0 * want, rtol=1e-5, atol=1e-9)
    assert mine.grad[::7].abs().max() == 0, "ignored rows get no gradient"


def test_causal_lm_loss_equals_the_models_own_loss_and_gradients():
    model = make_tiny_model(vocab_size=128).train()
    torch.manual_seed(1)
    ids = torch.randint(0, 128, (3, 20))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding
    labels = ids.masked_fill(mask == 0, -100)
    labels[1, :8] = -100  # a prompt that carries no loss
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    n = torch.tensor(60)

    own = model(**batch, num_items_in_batch=n).loss
    own.backward()
    own_grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    mine = causal_lm_loss(model, dict(batch), n)
    mine.backward()
    assert mine.item() == pytest.approx(own.item(), rel=1e-6)
    for k, p in model.named_parameters():
        assert torch.allclose(p.grad, own_grads[k], rtol=1e-4, atol=1e-7), k


def test_under_bf16_autocast_the_loss_matches_and_gradients_reach_the_weights():
    model = make_tiny_model(vocab_size=128).train()
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(2))
    batch = {"input_ids": ids, "labels": ids}
    n = torch.tensor(30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        own = model(**batch, num_items_in_batch=n).loss
        mine = causal_lm_loss(model, dict(batch), n)
    assert mine.item() == pytest.approx(own.item(), rel=1e-5)
    mine.backward()
    assert model.lm_head.weight.grad.abs().sum() > 0


def test_only_plain_causal_lm_losses_are_replaced():
    llama = make_tiny_model(vocab_size=64)
    assert has_plain_causal_lm_loss(llama)
    lora = get_peft_model(make_tiny_model(vocab_size=64), LoraConfig(target_modules=["q_proj"]))
    assert has_plain_causal_lm_loss(lora)
    moe = MixtralForCausalLM(
        MixtralConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            num_local_experts=2,
            output_router_logits=True,  # its loss adds the router's auxiliary loss
        )
    )
    assert not has_plain_causal_lm_loss(moe)


def test_pretraining_with_and_without_the_chunked_loss_logs_the_same_losses(tmp_path, corpus_file):
    cache = tmp_path / "cache"
    common = ["--train.max_steps", "6", "--train.logging_steps", "1", "--train.eval_steps", "0"]
    for flag in ("true", "false"):
        args = pretrain_args(tmp_path / flag, corpus_file, cache, *common)
        assert main([*args, "--train.chunked_loss", flag]) == 0
    runs = {
        flag: [
            r["train_loss"]
            for r in read_metrics(tmp_path / flag / "metrics.jsonl")
            if "train_loss" in r
        ]
        for flag in ("true", "false")
    }
    assert len(runs["true"]) == 6
    assert runs["true"] == pytest.approx(runs["false"], rel=1e-4)
    assert runs["true"][-1] < runs["true"][0] - 0.3, "six steps lower the loss by 0.4 here"
