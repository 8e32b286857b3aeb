"""Sliding-window perplexity against independent computations on real text."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny_model, train_briefly

from llmkit.errors import LlmkitError
from llmkit.evaluation.perplexity import perplexity, texts_to_stream

REL = 1e-4


@pytest.fixture(scope="module")
def trained_model(tiny_tokenizer, shakespeare_text):
    """A briefly trained model, so scores depend on how much context a token gets."""
    model = make_tiny_model(len(tiny_tokenizer), seed=1)
    return train_briefly(model, tiny_tokenizer, shakespeare_text)


@pytest.fixture(scope="module")
def stream(tiny_tokenizer, shakespeare_text) -> torch.Tensor:
    """The first 3000 tokens of Tiny Shakespeare."""
    ids = tiny_tokenizer(shakespeare_text[:20_000], add_special_tokens=False)["input_ids"]
    assert len(ids) >= 3000
    return torch.tensor(ids[:3000])


def scoring_start(t: int, context: int, stride: int) -> int:
    """Start of the first window whose inputs reach target t: windows start at k * stride."""
    k = max(0, math.ceil((t - context) / stride))
    return k * stride


@torch.no_grad()
def reference_by_window(model, ids: torch.Tensor, context: int, stride: int) -> tuple[float, int]:
    """One unbatched, unpadded forward per window, plain cross_entropy on its targets."""
    targets_of = defaultdict(list)
    for t in range(1, len(ids)):
        targets_of[scoring_start(t, context, stride)].append(t)
    total, count = 0.0, 0
    for start, ts in targets_of.items():
        assert max(ts) - start <= context
        logits = model(ids[None, start : max(ts)]).logits[0]
        rows = torch.tensor(ts) - start - 1
        total += F.cross_entropy(logits[rows].float(), ids[ts], reduction="sum").item()
        count += len(ts)
    return total, count


@torch.no_grad()
def reference_by_token(model, ids: torch.Tensor, context: int, stride: int) -> float:
    """One forward per target token on exactly the context its window gives."""
    total = 0.0
    for t in range(1, len(ids)):
        start = scoring_start(t, context, stride)
        last = model(ids[None, start:t]).logits[0, -1].float()
        total -= torch.log_softmax(last, dim=-1)[ids[t]].item()
    return total


@pytest.mark.parametrize(("context", "stride"), [(256, 256), (128, 64), (100, 37), (50, 50)])
def test_matches_window_by_window_reference(trained_model, stream, context, stride):
    result = perplexity(trained_model, stream, context_length=context, stride=stride)
    ref_nll, ref_count = reference_by_window(trained_model, stream, context, stride)
    assert result.tokens_scored == ref_count == len(stream) - 1
    assert result.nll_sum == pytest.approx(ref_nll, rel=REL)
    assert result.mean_nll == pytest.approx(ref_nll / ref_count, rel=REL)
    assert result.perplexity == pytest.approx(math.exp(ref_nll / ref_count), rel=REL)
    expected_windows = 1 + math.ceil(max(0, len(stream) - 1 - context) / stride)
    assert result.windows == expected_windows


@pytest.mark.parametrize(("context", "stride"), [(48, 1), (48, 20), (48, 48)])
def test_matches_token_by_token_reference(trained_model, stream, context, stride):
    ids = stream[:200]
    result = perplexity(trained_model, ids, context_length=context, stride=stride, batch_size=4)
    assert result.tokens_scored == len(ids) - 1
    assert result.nll_sum == pytest.approx(
        reference_by_token(trained_model, ids, context, stride), rel=REL
    )


def test_disjoint_windows_match_hf_loss(trained_model, stream):
    """stride == context: chunks of context + 1 tokens overlapping by one, HF's own loss."""
    context = 128
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(stream) - 1, context):
            chunk = stream[None, start : start + context + 1]
            n = chunk.shape[1] - 1
            total += trained_model(chunk, labels=chunk).loss.item() * n
            count += n
    result = perplexity(trained_model, stream, context_length=context, stride=context)
    assert result.tokens_scored == count
    assert result.nll_sum == pytest.approx(total, rel=REL)


def test_more_context_changes_the_score(trained_model, stream):
    """Guards the references above: window placement matters for this model."""
    short = perplexity(trained_model, stream, context_length=16, stride=16).mean_nll
    long = perplexity(trained_model, stream, context_length=128, stride=32).mean_nll
    assert short - long > 10 * REL * long


def test_batch_size_does_not_change_the_result(trained_model, stream):
    ids = stream[:2000]  # the last windows are shorter, so batches carry padding
    results = [
        perplexity(trained_model, ids, context_length=100, stride=37, batch_size=b)
        for b in (1, 3, 8)
    ]
    for r in results[1:]:
        assert r.tokens_scored == results[0].tokens_scored == len(ids) - 1
        assert r.windows == results[0].windows
        assert r.nll_sum == pytest.approx(results[0].nll_sum, rel=1e-5)


def test_stream_shorter_than_context(trained_model, stream):
    ids = stream[:10]
    result = perplexity(trained_model, ids, context_length=256, stride=64)
    assert (result.windows, result.tokens_scored) == (1, 9)
    assert result.nll_sum == pytest.approx(reference_by_token(trained_model, ids, 256, 64), rel=REL)


def test_accepts_lists_and_batch_of_one_and_keeps_training_mode(trained_model, stream):
    ids = stream[:200]
    a = perplexity(trained_model, ids.tolist(), context_length=64, stride=32)
    trained_model.train()
    try:
        b = perplexity(trained_model, ids[None], context_length=64, stride=32, show_progress=True)
        assert trained_model.training
    finally:
        trained_model.eval()
    assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-6)


def test_untrained_model_is_near_uniform(tiny_model, tiny_tokenizer, stream):
    vocab = len(tiny_tokenizer)
    result = perplexity(tiny_model, stream, context_length=256, stride=128)
    assert vocab / 3 < result.perplexity < vocab * 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"context_length": 64, "stride": 0}, "stride=0"),
        ({"context_length": 64, "stride": 65}, "stride <= 64"),
        ({"context_length": 257, "stride": 64}, "max_position_embeddings=256"),
        ({"context_length": 0, "stride": 1}, "context_length=0"),
        ({"context_length": 64, "stride": 64, "batch_size": 0}, "batch_size=0"),
    ],
)
def test_invalid_settings(tiny_model, stream, kwargs, match):
    with pytest.raises(LlmkitError, match=match) as err:
        perplexity(tiny_model, stream, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("ids", [[], [5], torch.zeros(2, 10, dtype=torch.long)])
def test_invalid_streams(tiny_model, ids):
    with pytest.raises(LlmkitError, match="input_ids") as err:
        perplexity(tiny_model, ids, context_length=64, stride=64)
    assert "\n" not in str(err.value)


def test_texts_to_stream_joins_documents_with_eos(tiny_tokenizer):
    docs = ["First Citizen:\nBefore we proceed", "All:\nSpeak, speak.", "MENENIUS: why"]
    stream = texts_to_stream(tiny_tokenizer, docs)
    eos = tiny_tokenizer.eos_token_id
    expected: list[int] = []
    for i, doc in enumerate(docs):
        if i:
            expected.append(eos)
        expected += tiny_tokenizer.encode(doc, add_special_tokens=False)
    assert stream == expected
    assert stream.count(eos) == len(docs) - 1
    assert tiny_tokenizer.bos_token_id not in stream
    assert texts_to_stream(tiny_tokenizer, []) == []
    assert texts_to_stream(tiny_tokenizer, docs[:1]) == expected[: stream.index(eos)]
