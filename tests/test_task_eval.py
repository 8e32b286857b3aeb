"""evaluate_task: prompts -> batched greedy generation -> post-processing -> metrics.

The metrics it returns must be exactly the metric layer's on its own predictions, the
per-example scores must be the reference implementations' sentence-level numbers, and the
batch size must not change anything.
"""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer

from llmkit.errors import LlmkitError
from llmkit.evaluation.metrics import compute_metrics
from llmkit.evaluation.task_eval import evaluate_task, unpad_shares
from llmkit.generation.batched import generate_texts, keep_last
from llmkit.tasks import get_task
from llmkit.tasks.data import load_task_records


@pytest.fixture(scope="module")
def translation(shared_data):
    task = get_task("translation", {"source_lang": "en", "target_lang": "ro"})
    path = shared_data / "translation" / "wmt16_en_ro_sample.jsonl"
    return task, load_task_records(task, [str(path)], "test")


@pytest.fixture(scope="module")
def summarization(shared_data):
    task = get_task("summarization")
    path = shared_data / "summarization" / "xsum_sample.jsonl"
    return task, load_task_records(task, [str(path)], "test")


def test_metrics_are_the_metric_layer_on_the_predictions(tiny_model, tiny_tokenizer, translation):
    task, records = translation
    result = evaluate_task(
        tiny_model, tiny_tokenizer, task, records, generation={"max_new_tokens": 12}, batch_size=4
    )
    preds = [r["prediction"] for r in result.predictions]
    refs = [r["references"] for r in result.predictions]
    assert result.num_examples == len(result.predictions) == len(records) == 10
    assert refs == [[r["target"]] for r in records]
    assert [r["prompt"] for r in result.predictions] == [task.prompt(r) for r in records]
    assert result.metrics == compute_metrics(["bleu", "chrf"], preds, refs)
    assert set(result.by_metric) == {"bleu", "chrf"}
    assert result.by_metric["chrf"]["chrf"] == result.metrics["chrf"]
    assert result.metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert result.metrics["chrf"] > 0  # non-trivial numbers, so the comparison means something

    # Per example: sacrebleu's own sentence-level scores.
    for row, pred, ref in zip(result.predictions, preds, refs):
        assert row["scores"]["sentence_bleu"] == sacrebleu.sentence_bleu(pred, ref).score
        assert row["scores"]["chrf"] == pytest.approx(sacrebleu.sentence_chrf(pred, ref).score)

    # The predictions are the task's post-processing of plain generate_texts output.
    raw = generate_texts(
        tiny_model,
        tiny_tokenizer,
        [task.prompt(r) for r in records],
        max_new_tokens=12,
        stop_strings=task.generation["stop_strings"],
    )
    assert preds == [task.postprocess(p) for p in raw]
    assert result.generation == {
        "max_new_tokens": 12,
        "stop_strings": ["\n"],
        "max_prompt_tokens": 256 - 12,
    }


def test_batch_size_does_not_change_predictions(tiny_model, tiny_tokenizer, summarization):
    task, records = summarization
    runs = [
        evaluate_task(
            tiny_model,
            tiny_tokenizer,
            task,
            records,
            batch_size=b,
            max_examples=6,
            generation={"max_new_tokens": 10},
        )
        for b in (1, 4)
    ]
    assert runs[0].predictions == runs[1].predictions
    assert runs[0].metrics == runs[1].metrics
    assert runs[0].num_examples == 6


def test_options_truncation_and_token_counts(tiny_model, tiny_tokenizer, summarization):
    task, records = summarization
    result = evaluate_task(
        tiny_model,
        tiny_tokenizer,
        task,
        records,
        metric_options={"rouge": {"use_stemmer": True}},
        generation={"max_new_tokens": 8},
        max_prompt_tokens=100,
    )
    preds = [r["prediction"] for r in result.predictions]
    refs = [r["references"] for r in result.predictions]
    stemmed = compute_metrics(["rouge"], preds, refs, {"rouge": {"use_stemmer": True}})
    assert result.metrics == stemmed
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeLsum"], use_stemmer=True)
    for row, pred, ref in zip(result.predictions, preds, refs):
        expected = scorer.score(ref[0], pred)
        assert row["scores"]["rouge1"] == pytest.approx(expected["rouge1"].fmeasure, abs=1e-12)
        assert row["scores"]["rougeLsum"] == pytest.approx(expected["rougeLsum"].fmeasure)

    lengths = [len(tiny_tokenizer(task.prompt(r))["input_ids"]) for r in records]
    assert result.truncated_prompts == sum(n > 100 for n in lengths) > 0
    assert result.num_prompt_tokens == sum(min(n, 100) for n in lengths)
    assert result.num_prediction_tokens == sum(
        len(tiny_tokenizer(p, add_special_tokens=False)["input_ids"]) for p in preds
    )
    # The limit reaches generation: predictions are those of the truncated prompts.
    assert preds == [
        task.postprocess(p)
        for p in generate_texts(
            tiny_model,
            tiny_tokenizer,
            [task.prompt(r) for r in records],
            max_new_tokens=8,
            stop_strings=["\n"],
            max_prompt_tokens=100,
        )
    ]


@torch.no_grad()
def test_truncated_prompts_generate_from_their_last_tokens(
    tiny_model, tiny_tokenizer, summarization
):
    """Independent of llmkit: plain model.generate on the prompt's last 100 token ids."""
    task, records = summarization
    prompts = [task.prompt(r) for r in records[:3]]
    ours = generate_texts(
        tiny_model, tiny_tokenizer, prompts, max_new_tokens=6, max_prompt_tokens=100
    )
    for prompt, text in zip(prompts, ours):
        ids = tiny_tokenizer(prompt)["input_ids"]
        assert len(ids) > 100
        last = torch.tensor([ids[-100:]])
        out = tiny_model.generate(
            last,
            attention_mask=torch.ones_like(last),
            max_new_tokens=6,
            do_sample=False,
            pad_token_id=tiny_tokenizer.pad_token_id,
        )
        assert text == tiny_tokenizer.decode(out[0, 100:], skip_special_tokens=True).strip()


def test_keep_last_keeps_a_leading_bos():
    assert keep_last([1, 5, 6, 7, 8], 3, bos_token_id=1) == [1, 7, 8]
    assert keep_last([5, 6, 7, 8], 3, bos_token_id=1) == [6, 7, 8]
    assert keep_last([1, 5], 3, bos_token_id=1) == [1, 5]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["blue"]}, "unknown metric 'blue'; known: accuracy, bleu"),
        ({"metric_options": {"chrf": {}}}, "options given for metric 'chrf'"),
        ({"metric_options": {"rouge": {"stem": True}}}, "unknown option 'stem'"),
        ({"generation": {"beams": 4}}, "generation.beams: not a generation setting"),
        ({"generation": {"max_new_tokens": 0}}, "max_new_tokens must be a positive integer"),
        ({"generation": {"max_new_tokens": 300}}, "leaves no room for a prompt"),
        ({"max_prompt_tokens": 250}, "max_prompt_tokens=250 plus max_new_tokens=64"),
        ({"max_examples": 0}, "max_examples=0: must be at least 1"),
    ],
)
def test_bad_settings_fail_before_generating(
    tiny_model, tiny_tokenizer, summarization, kwargs, message
):
    task, records = summarization
    with pytest.raises(LlmkitError, match=message.replace("(", r"\(")) as err:
        evaluate_task(tiny_model, tiny_tokenizer, task, records, **kwargs)
    assert "\n" not in str(err.value)


def test_no_records(tiny_model, tiny_tokenizer, summarization):
    with pytest.raises(LlmkitError, match="task summarization: no examples to evaluate"):
        evaluate_task(tiny_model, tiny_tokenizer, summarization[0], [])


def test_reference_problems_are_named_before_generating(tiny_model, tiny_tokenizer, shared_data):
    task = get_task("qa", {"allow_no_answer": True})
    records = load_task_records(task, [str(shared_data / "qa" / "squad_v2_sample.json")], "test")
    with pytest.raises(LlmkitError, match=r"task qa: chrf: references\[3\] is empty"):
        evaluate_task(tiny_model, tiny_tokenizer, task, records, metrics=["chrf"])


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_padded_shares_come_back_in_order_without_the_padding(processes):
    """Shares as accelerate's split_between_processes(apply_padding=True) makes them: the
    first total % processes shares one item longer, each padded with the last item."""
    for total in range(1, 12):
        width = -(-total // processes)
        shares = [list(s) for s in np.array_split(np.arange(total), processes)]
        gathered = [i for s in shares for i in s + [total - 1] * (width - len(s))]
        assert len(gathered) == width * processes
        assert unpad_shares(gathered, total, processes) == list(range(total))
