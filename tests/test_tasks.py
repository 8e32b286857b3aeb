"""Tasks: columns and aliases, prompts and targets, loss masking on exact token ids, truncation,
the file layouts of real data sets, user-defined tasks, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch
from conftest import check_error, finetune_args, make_tiny_model

from llmkit.cli import main
from llmkit.config.finetune import TaskDataConfig
from llmkit.errors import DataError, LlmkitError
from llmkit.evaluation.metrics import compute_metrics
from llmkit.tasks import get_task, task_names
from llmkit.tasks.data import load_task_records, load_task_splits
from llmkit.tasks.encode import IGNORE, PadCollate, encode_example, encode_records
from llmkit.training.loop import count_targets

QA = {
    "context": "The cat sat on the mat near the door.",
    "question": "Where did the cat sit?",
    "answers": {"text": ["on the mat"], "answer_start": [12]},
}


def test_builtin_tasks_are_registered_and_listed(capsys):
    assert task_names() == ["classification", "instruction", "qa", "summarization", "translation"]
    assert main(["tasks"]) == 0
    listing = capsys.readouterr().out
    for name in task_names():
        assert f"\n{name} " in f"\n{listing}"
    assert "answers (answer, answer_text)" in listing and "exact_match, f1" in listing


def test_labels_cover_only_target_and_eos_exact_ids(tiny_tokenizer):
    tok = tiny_tokenizer
    task = get_task("qa")
    record = task.normalize(dict(QA), "test")
    prompt = (
        "Context: The cat sat on the mat near the door.\nQuestion: Where did the cat sit?\nAnswer:"
    )
    assert task.prompt(record) == prompt and task.target(record) == " on the mat"

    example, truncated = encode_example(task, tok, record, max_length=128)
    prompt_ids = tok(prompt)["input_ids"]
    target_ids = tok(" on the mat", add_special_tokens=False)["input_ids"]
    eos = tok.eos_token_id
    assert not truncated
    assert example["input_ids"] == prompt_ids + target_ids + [eos]
    assert example["labels"] == [IGNORE] * len(prompt_ids) + target_ids + [eos]
    assert tok.decode(example["labels"][len(prompt_ids) :]) == " on the mat<|eos|>"

    # A shorter second example: padding gets the pad id, label -100 and attention 0.
    short = task.normalize({**QA, "context": "A cat.", "answers": ["cat"]}, "test")
    other, _ = encode_example(task, tok, short, max_length=128)
    batch = PadCollate(tok.pad_token_id)([example, other])
    n, m = len(example["input_ids"]), len(other["input_ids"])
    assert batch["input_ids"].shape == (2, n) and m < n
    assert batch["input_ids"][1, m:].tolist() == [tok.pad_token_id] * (n - m)
    assert batch["labels"][1, m:].tolist() == [IGNORE] * (n - m)
    assert batch["attention_mask"].sum(1).tolist() == [n, m]
    n_targets = len(target_ids) + 1 + len(tok(" cat", add_special_tokens=False)["input_ids"]) + 1
    assert count_targets(batch) == n_targets

    # The model's loss is the mean cross-entropy over exactly those target tokens.
    model = make_tiny_model(len(tok))
    with torch.no_grad():
        out = model(**batch)
    logits = out.logits[:, :-1].reshape(-1, out.logits.shape[-1])
    labels = batch["labels"][:, 1:].reshape(-1)
    keep = labels != IGNORE
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert keep.sum().item() == n_targets
    assert torch.allclose(out.loss, manual, atol=1e-6)


def test_long_context_is_cut_and_long_target_dropped(tiny_tokenizer):
    tok = tiny_tokenizer
    task = get_task("qa")
    filler = "The mat was red and the door was open. " * 40
    long_ctx = task.normalize({**QA, "context": QA["context"] + " " + filler}, "t")
    long_answer = task.normalize({**QA, "answers": ["very " * 80 + "long"]}, "t")
    fits = task.normalize(dict(QA), "t")
    data, stats = encode_records(task, tok, [long_ctx, long_answer, fits], max_length=64)
    assert stats.as_dict() == {"examples": 2, "truncated": 1, "dropped": 1}
    cut = data[0]
    target = tok(" on the mat", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(cut["input_ids"]) <= 64 and len(cut["input_ids"]) >= 64 - 3
    assert cut["input_ids"][-len(target) :] == target  # the target is never cut
    assert [t for t in cut["labels"] if t != IGNORE] == target
    prompt = tok.decode(cut["input_ids"][: -len(target)])
    kept_context = prompt.split("\nQuestion:")[0].removeprefix("Context: ")
    assert 20 < len(kept_context) < len(long_ctx["context"])
    assert long_ctx["context"].startswith(kept_context)
    assert prompt.endswith("\nQuestion: Where did the cat sit?\nAnswer:")

    with pytest.raises(DataError, match="task.max_length=64"):
        encode_records(task, tok, [long_answer], max_length=64)


def test_qa_squad_v2_sample_with_unanswerable_questions(shared_data):
    path = shared_data / "qa" / "squad_v2_sample.json"
    with pytest.raises(DataError) as e:
        load_task_records(get_task("qa"), [str(path)], "train")
    assert f"{path} record 4: the answers list is empty" in str(e.value)
    assert "task.options.allow_no_answer=true" in str(e.value)

    task = get_task("qa", {"allow_no_answer": True, "no_answer_text": "no answer"})
    records = load_task_records(task, [str(path)], "train")
    assert len(records) == 14
    unanswerable = [r for r in records if not r["answers"]["text"]]
    assert len(unanswerable) == 6
    assert {task.target(r) for r in unanswerable} == {" no answer"}
    assert task.target(records[0]) == " France" and task.references(records[0]) == ["France"] * 4
    # "no answer" is scored as the empty SQuAD 2.0 prediction: right on unanswerable questions.
    predictions = [task.postprocess(" no answer") for _ in unanswerable]
    refs = [task.references(r) for r in unanswerable]
    assert compute_metrics(["exact_match"], predictions, refs) == {"exact_match": 100.0}


def test_qa_nested_squad_layout(tmp_path):
    nested = {
        "version": "v2.0",
        "data": [
            {
                "title": "Cats",
                "paragraphs": [
                    {
                        "context": "Tom is a cat. He lives in Paris.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where does Tom live?",
                                "answers": [{"text": "Paris", "answer_start": 26}],
                            },
                            {
                                "id": "q2",
                                "question": "What does Tom eat?",
                                "answers": [],
                                "plausible_answers": [{"text": "cat", "answer_start": 9}],
                                "is_impossible": True,
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "train-v2.0.json"
    path.write_text(json.dumps(nested))
    records = load_task_records(get_task("qa"), [str(path)], "train")
    assert [(r["id"], r["title"], r["answers"]) for r in records] == [
        ("q1", "Cats", {"text": ["Paris"], "answer_start": [26]}),
        ("q2", "Cats", {"text": [], "answer_start": []}),
    ]
    assert get_task("qa").target(records[1]) == " unanswerable"


def test_translation_wmt_files_and_two_columns(shared_data, tmp_path):
    files = sorted(str(p) for p in (shared_data / "translation").glob("*.jsonl"))
    task = get_task("translation", {"source_lang": "en", "target_lang": "ro"})
    records = load_task_records(task, files, "train")
    assert len(records) == 21
    first = records[0]
    assert task.prompt(first).startswith("English: ") and task.prompt(first).endswith("\nRomanian:")
    assert task.references(first) == [first["target"]] and "ţ" in records[10]["target"] + "".join(
        r["target"] for r in records
    )

    with pytest.raises(DataError, match=r"no 'fr' text \(languages: en, ro\); set task.options"):
        load_task_records(get_task("translation"), files, "train")

    columns = tmp_path / "pairs.csv"
    columns.write_text("en,fr\nGood morning.,Bonjour.\nThank you.,Merci.\n")
    pairs = load_task_records(get_task("translation"), [str(columns)], "train")
    assert [(r["source"], get_task("translation").target(r)) for r in pairs] == [
        ("Good morning.", " Bonjour."),
        ("Thank you.", " Merci."),
    ]


def test_summarization_xsum_and_aliases(shared_data, tmp_path):
    task = get_task("summarization")
    xsum = load_task_records(task, [str(shared_data / "summarization" / "xsum_sample.jsonl")], "t")
    assert len(xsum) == 10 and all("\n" not in task.target(r) for r in xsum)
    cnn = tmp_path / "cnn.jsonl"
    cnn.write_text(json.dumps({"article": "Long story.", "highlights": "One.\nTwo."}) + "\n")
    (record,) = load_task_records(task, [str(cnn)], "train")
    assert task.prompt(record) == "Document: Long story.\nSummary:"
    assert task.target(record) == " One. Two."


def test_classification_labels(shared_data, tmp_path):
    path = shared_data / "classification" / "mrpc_dev.csv"
    task = get_task("classification")
    records = load_task_records(task, [str(path)], "train")
    task.learn_from(records)
    assert task.options.labels == ["equivalent", "not_equivalent"]
    assert task.prompt(records[0]).startswith("Text 1: He said") and "\nText 2: " in task.prompt(
        records[0]
    )
    assert task.target(records[1]) == " not_equivalent"
    assert task.postprocess(" equivalent\nText 1: ...") == "equivalent"

    declared = get_task("classification", {"labels": ["no", "yes"]})
    ints = tmp_path / "ints.jsonl"
    ints.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": "no"}\n')
    assert [r["label"] for r in load_task_records(declared, [str(ints)], "t")] == ["yes", "no"]
    with pytest.raises(DataError) as e:
        load_task_records(declared, [str(path)], "train")
    assert f"{path} record 1: label 'equivalent' is not in the label set (no, yes)" in str(e.value)


def test_instruction_messages_and_alpaca_records(tiny_tokenizer, tmp_path):
    tok = tiny_tokenizer.__class__.from_pretrained(_saved(tiny_tokenizer, tmp_path))
    assert tok.chat_template is None
    task = get_task("instruction")
    task.setup(tok)
    assert tok.chat_template  # llmkit's default, saved with the tokenizer
    chat = task.normalize(
        {
            "conversations": [
                {"from": "human", "value": "Say hi."},
                {"from": "gpt", "value": "Hi!"},
            ]
        },
        "t",
    )
    alpaca = task.normalize({"instruction": "Add.", "input": "2 and 3", "output": "5"}, "t")
    assert task.prompt(chat) == "<|user|>\nSay hi.\n<|assistant|>\n" and task.target(chat) == "Hi!"
    assert task.prompt(alpaca) == "<|user|>\nAdd.\n\n2 and 3\n<|assistant|>\n"
    # Without a tokenizer (e.g. in another process) the same default template renders.
    assert get_task("instruction").prompt(alpaca) == task.prompt(alpaca)
    example, _ = encode_example(task, tok, alpaca, 64)
    assert tok.decode([t for t in example["labels"] if t != IGNORE]) == "5<|eos|>"
    with pytest.raises(DataError, match="must end with an assistant message"):
        task.normalize({"messages": [{"role": "user", "content": "hi"}]}, "t")


def _saved(tok, tmp_path):
    tok.save_pretrained(tmp_path / "tok")
    return tmp_path / "tok"


def test_user_tasks_from_a_yaml_template_and_a_python_file(tmp_path):
    yaml_task = tmp_path / "keywords.yaml"
    yaml_task.write_text(
        "name: keywords\n"
        "columns: {text: [body], keywords: [tags]}\n"
        'prompt: "Text: {text}\\nKeywords:"\n'
        'target: " {keywords}"\n'
        "context_column: text\n"
        "metrics: [rouge]\n"
        "generation: {max_new_tokens: 8}\n"
    )
    task = get_task(str(yaml_task))
    record = task.normalize({"body": "cats and dogs", "tags": "pets"}, "t")
    assert (task.name, task.prompt(record), task.target(record)) == (
        "keywords",
        "Text: cats and dogs\nKeywords:",
        " pets",
    )
    assert task.references(record) == ["pets"] and task.generation["stop_strings"] == ["\n"]
    with pytest.raises(DataError, match=r"no column 'keywords' .*accepted aliases: tags"):
        task.normalize({"body": "x"}, "t")

    py_task = tmp_path / "shout.py"
    py_task.write_text(
        "from llmkit.tasks import Task\n\n"
        "class Shout(Task):\n"
        "    name = 'shout'\n"
        "    columns = {'text': ()}\n"
        "    default_metrics = ('exact_match',)\n"
        "    prompt_template = '{text}\\nLoud:'\n\n"
        "    def target(self, record):\n"
        "        return ' ' + record['text'].upper()\n"
    )
    shout = get_task(str(py_task))
    assert shout.name == "shout" and "shout" in task_names()
    assert shout.target(shout.normalize({"text": "hi"}, "t")) == " HI"

    bad = tmp_path / "bad.yaml"
    bad.write_text('name: x\ncolumns: {a: []}\nprompt: "{b}"\ntarget: " {a}"\n')
    with pytest.raises(LlmkitError, match=r"prompt uses \{b\}, which is not a column"):
        get_task(str(bad))


# --------------------------------------------------------------------------------------------
# Bad input through the CLI: one line, exit code 2, nothing written


def test_unknown_task_lists_the_known_ones(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out"
    code = main(finetune_args(out, tiny_model_dir, tmp_path, "--task", "poetry"))
    check_error(code, out, capsys, "unknown task 'poetry'", "classification, instruction, qa")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--eval.metrics", "f1,blue"], ["unknown metric 'blue'", "exact_match"]),
        (["--eval.metric_for_best_model", "blue"], ["metric_for_best_model 'blue'", "f1"]),
        (["--eval.generation", "{max_tokens: 5}"], ["generation.max_tokens"]),
    ],
)
def test_unknown_names_in_the_eval_settings(tmp_path, tiny_model_dir, capsys, extra, expected):
    """Checked before the base model is scored, so nothing is written."""
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"context": "a b", "question": "a?", "answer": "a"}) + "\n")
    out = tmp_path / "out"
    code = main(finetune_args(out, tiny_model_dir, data, *extra))
    check_error(code, out, capsys, *expected)


def test_missing_column_names_column_and_aliases(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"passage": "x", "query": "y"}) + "\n")
    out = tmp_path / "out"
    code = main(finetune_args(out, tiny_model_dir, data, "--task", "qa"))
    check_error(
        code,
        out,
        capsys,
        f"{data} line 1: no column 'answers'",
        "accepted aliases: answer, answer_text",
    )


def test_empty_answers_list(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({**QA, "answers": {"text": [], "answer_start": []}}) + "\n")
    out = tmp_path / "out"
    code = main(finetune_args(out, tiny_model_dir, data, "--task", "qa"))
    check_error(code, out, capsys, f"{data} line 1: the answers list is empty")


def test_labels_outside_the_declared_set(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "fine", "label": "positive"}\n{"text": "bad", "label": "meh"}\n')
    out = tmp_path / "out"
    args = ["--task", "classification", "--task.options.labels", "positive,negative"]
    code = main(finetune_args(out, tiny_model_dir, data, *args))
    check_error(code, out, capsys, f"{data} line 2: label 'meh' is not in the label set")


def test_task_options_are_checked_and_shown_in_help(tmp_path, tiny_model_dir, capsys):
    with pytest.raises(SystemExit) as exit:  # usage errors end in argparse, as everywhere
        main(finetune_args(tmp_path / "out", tiny_model_dir, tmp_path, "--task.options.bogus", "1"))
    assert exit.value.code == 2
    assert "unrecognized arguments: --task.options.bogus" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    out = tmp_path / "out"
    code = main(finetune_args(out, tiny_model_dir, tmp_path, "--task.options", "{target_lang: de}"))
    check_error(code, out, capsys, "unknown key 'task.options.target_lang'", "no_answer_text")
    with pytest.raises(SystemExit):
        main(["finetune", "--task", "translation", "--help"])
    shown = capsys.readouterr().out
    assert "options of task translation" in shown and "--task.options.target_lang" in shown
    assert "--task.options.no_answer_text" not in shown


def test_a_saved_dataset_dict_gives_each_split_its_own_records(tmp_path):
    """A `save_to_disk` DatasetDict (with "dev" for validation) is read split by split."""
    embedded = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa"
    rows = {
        name: [json.loads(line) for line in (embedded / f"{split}.jsonl").open()][:5]
        for name, split in (("train", "train"), ("dev", "validation"), ("test", "test"))
    }
    folder = tmp_path / "saved"
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in rows.items()}).save_to_disk(
        folder
    )
    splits = load_task_splits(get_task("qa"), TaskDataConfig(train_files=[str(folder)]), [])
    assert [r["id"] for r in splits.train] == [r["id"] for r in rows["train"]]
    assert [r["id"] for r in splits.validation] == [r["id"] for r in rows["dev"]]
    assert [r["id"] for r in splits.test] == [r["id"] for r in rows["test"]]
    assert splits.validation_source == "the data's validation split"
    # Without a test split a test set must be given explicitly: one line, naming the folder.
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows["train"])}).save_to_disk(
        tmp_path / "train-only"
    )
    with pytest.raises(DataError, match="train-only has no test split"):
        load_task_records(get_task("qa"), [str(tmp_path / "train-only")], "test")
