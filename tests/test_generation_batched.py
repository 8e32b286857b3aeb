"""Batched generation gives the same predictions as plain one-prompt generation."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tiny_model, train_briefly

from llmkit.errors import LlmkitError
from llmkit.generation.batched import generate_texts, keep_last

NEW = 24


@pytest.fixture(scope="module")
def model(tiny_tokenizer, shakespeare_text):
    """Briefly trained, so different prompts get different, non-empty continuations."""
    model = make_tiny_model(len(tiny_tokenizer), seed=2)
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    model.config.eos_token_id = tiny_tokenizer.eos_token_id
    return train_briefly(model, tiny_tokenizer, shakespeare_text)


@pytest.fixture(scope="module")
def prompts(shakespeare_text) -> list[str]:
    """Seven prompts of different lengths (2 to 40 words), taken from the text."""
    words = shakespeare_text[50_000:60_000].split(" ")
    lengths = [2, 40, 5, 17, 9, 3, 28]
    return [" ".join(words[i * 50 : i * 50 + n]) for i, n in enumerate(lengths)]


@torch.no_grad()
def plain_generate(model, tokenizer, prompt: str, max_new_tokens: int, **kwargs) -> list[int]:
    """New token ids from an unpadded, unbatched model.generate."""
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        **kwargs,
    )
    return out[0, ids.shape[1] :].tolist()


@pytest.fixture(scope="module")
def reference(model, tiny_tokenizer, prompts) -> list[list[int]]:
    return [plain_generate(model, tiny_tokenizer, p, NEW) for p in prompts]


def test_batched_equals_one_at_a_time(model, tiny_tokenizer, prompts):
    batched = generate_texts(model, tiny_tokenizer, prompts, max_new_tokens=NEW, batch_size=4)
    single = generate_texts(model, tiny_tokenizer, prompts, max_new_tokens=NEW, batch_size=1)
    assert batched == single
    assert all(batched)
    assert len(set(batched)) >= 4, "outputs too uniform for the test to mean anything"


def test_matches_plain_generate_with_prompt_stripped(model, tiny_tokenizer, prompts, reference):
    preds = generate_texts(model, tiny_tokenizer, prompts, max_new_tokens=NEW, batch_size=4)
    for prompt, pred, new_ids in zip(prompts, preds, reference):
        assert len(new_ids) <= NEW
        assert pred == tiny_tokenizer.decode(new_ids, skip_special_tokens=True).strip()
        assert not pred.startswith(prompt)


def test_max_new_tokens_respected(model, tiny_tokenizer, prompts, reference):
    preds = generate_texts(model, tiny_tokenizer, prompts, max_new_tokens=3, batch_size=4)
    for pred, new_ids in zip(preds, reference):
        assert pred == tiny_tokenizer.decode(new_ids[:3], skip_special_tokens=True).strip()
    long = generate_texts(model, tiny_tokenizer, prompts, max_new_tokens=NEW, batch_size=4)
    assert sum(len(p) for p in preds) < sum(len(p) for p in long)


def test_stop_strings_cut_the_continuation(model, tiny_tokenizer, prompts, reference):
    stops = ["\n", ","]
    preds = generate_texts(
        model, tiny_tokenizer, prompts, max_new_tokens=NEW, batch_size=4, stop_strings=stops
    )
    cut = 0
    for pred, new_ids in zip(preds, reference):
        raw = tiny_tokenizer.decode(new_ids, skip_special_tokens=True)
        hits = [raw.find(s) for s in stops if s in raw]
        expected = raw[: min(hits)] if hits else raw
        cut += bool(hits)
        assert pred == expected.strip()
        assert not any(s in pred for s in stops)
    assert cut >= 3, "too few outputs hold a stop string for the test to mean anything"


def test_stops_at_eos_inside_a_batch(model, tiny_tokenizer, prompts, reference):
    """A row that ends early is padded while the rest of its batch goes on."""
    eos = reference[0][4]  # a token the model does produce, promoted to EOS
    preds = generate_texts(
        model, tiny_tokenizer, prompts, max_new_tokens=NEW, batch_size=4, eos_token_id=eos
    )
    ended = 0
    for pred, new_ids in zip(preds, reference):
        end = new_ids.index(eos) + 1 if eos in new_ids else len(new_ids)
        ended += end < len(new_ids)
        assert pred == tiny_tokenizer.decode(new_ids[:end], skip_special_tokens=True).strip()
    assert ended >= 1


def test_long_prompts_keep_their_last_tokens(model, tiny_tokenizer, prompts):
    preds = generate_texts(
        model, tiny_tokenizer, prompts, max_new_tokens=8, batch_size=4, max_prompt_tokens=4
    )
    for prompt, pred in zip(prompts, preds):
        ids = torch.tensor([tiny_tokenizer(prompt)["input_ids"][-4:]])
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False
            )
        assert pred == tiny_tokenizer.decode(out[0, 4:], skip_special_tokens=True).strip()
    assert keep_last([1, 5, 6, 7], 3, bos_token_id=1) == [1, 6, 7]
    assert keep_last([5, 6, 7], 2, bos_token_id=1) == [6, 7]
    assert keep_last([5, 6], 4, bos_token_id=1) == [5, 6]


def test_padding_side_and_mode_restored(model, tiny_tokenizer, prompts):
    tiny_tokenizer.padding_side = "right"
    model.train()
    try:
        generate_texts(model, tiny_tokenizer, prompts[:3], max_new_tokens=2, batch_size=2)
        assert tiny_tokenizer.padding_side == "right"
        assert model.training
        with pytest.raises(ValueError):
            generate_texts(model, tiny_tokenizer, prompts[:2], max_new_tokens=2, not_an_arg=1)
        assert tiny_tokenizer.padding_side == "right"
    finally:
        model.eval()


def test_invalid_inputs(model, tiny_tokenizer, prompts):
    assert generate_texts(model, tiny_tokenizer, [], max_new_tokens=4) == []
    with pytest.raises(LlmkitError, match="max_new_tokens=0"):
        generate_texts(model, tiny_tokenizer, prompts, max_new_tokens=0)
    with pytest.raises(LlmkitError, match="prompt 1"):
        generate_texts(model, tiny_tokenizer, ["hello", ""], max_new_tokens=4)
