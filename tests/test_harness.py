"""lm-evaluation-harness inside `llmkit evaluate`, and rolling perplexity equal to lm-eval's.

Offline: the lm-eval tasks are YAML files over local JSON lines (`dataset_path: json`), the
model is the tiny one of conftest. The rolling log-likelihood is checked against lm-eval's own
HFLM.loglikelihood_rolling, the word/byte metrics against an lm-eval run of a wikitext-style
task, and a multiple-choice accuracy against an independent scoring of the choices.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import check_error
from huggingface_hub.repocard_data import model_index_to_eval_results
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from llmkit.cli import main
from llmkit.evaluation.perplexity import rolling_loglikelihood, rolling_windows
from llmkit.evaluation.text_eval import lm_eval_encode, lm_eval_prefix_token

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """lm-eval here and in the subprocesses of these tests never reaches for the Hub (set per
    test, so the other test files keep their environment)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


MC = [
    {"question": "Where is the king? He is in the", "choices": ["castle", "sea", "field"]},
    {"question": "What light through yonder window", "choices": ["sleeps", "breaks", "fell"]},
    {"question": "To be, or not to be: that is the", "choices": ["road", "king", "question"]},
    {"question": "Now is the winter of our", "choices": ["discontent", "fire", "home"]},
]


@pytest.fixture(scope="module")
def documents(shakespeare_text) -> list[str]:
    """Three documents: several 256-token windows with a short last one, one, and a line."""
    return [shakespeare_text[:3100], shakespeare_text[5000:5400], "First Citizen:\nSpeak."]


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory, documents) -> Path:
    """A wikitext-style rolling task and a multiple-choice task, both over local files."""
    folder = tmp_path_factory.mktemp("lm-eval-tasks")
    pages = folder / "pages.jsonl"
    pages.write_text("".join(json.dumps({"page": d}) + "\n" for d in documents))
    mc = folder / "mc.jsonl"
    mc.write_text("".join(json.dumps(r | {"label": i % 3}) + "\n" for i, r in enumerate(MC)))
    (folder / "tiny_wikitext.yaml").write_text(
        "task: tiny_wikitext\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {pages}\n"
        'output_type: loglikelihood_rolling\ntest_split: test\ndoc_to_text: ""\n'
        'doc_to_target: "{{page}}"\nmetric_list:\n  - metric: word_perplexity\n'
        "  - metric: byte_perplexity\n  - metric: bits_per_byte\nmetadata:\n  version: 2.0\n"
    )
    (folder / "tiny_mc.yaml").write_text(
        "task: tiny_mc\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {mc}\n"
        'output_type: multiple_choice\ntest_split: test\ndoc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n'
        "metadata:\n  version: 1.0\n"
    )
    return folder


def evaluate(*args: str) -> int:
    return main(["evaluate", "--show_progress", "false", *args])


@pytest.mark.parametrize(("n_tokens", "max_length"), [(1, 4), (4, 4), (5, 4), (11, 4), (9, 3)])
def test_rolling_windows_are_lm_evals(n_tokens, max_length):
    """Same inputs, same predicted tokens as lm-eval's own window functions."""
    tokens = list(range(100, 100 + n_tokens))
    prefix = 7
    seq = [prefix, *tokens]
    ours = [
        (seq[w.start : w.stop], seq[w.first_target : w.stop + 1])
        for w in rolling_windows(n_tokens, max_length)
    ]
    theirs = []
    for context, predicted in map(
        make_disjoint_window, get_rolling_token_windows(tokens, prefix, max_length, 1)
    ):
        inputs = (context + predicted)[-(max_length + 1) :][:-1]  # as HFLM feeds the model
        theirs.append((inputs, predicted))
    assert ours == theirs


def test_rolling_loglikelihood_equals_lm_evals(tiny_model, tiny_tokenizer, documents):
    """Per document, llmkit's total log-likelihood is HFLM.loglikelihood_rolling's."""
    lm = HFLM(pretrained=tiny_model, tokenizer=tiny_tokenizer, batch_size=4, max_length=64)
    requests = [Instance("loglikelihood_rolling", {}, (d,), i) for i, d in enumerate(documents)]
    theirs = lm.loglikelihood_rolling(requests, disable_tqdm=True)
    prefix = lm_eval_prefix_token(tiny_tokenizer)
    assert prefix == lm.prefix_token_id
    docs = [lm_eval_encode(tiny_tokenizer, d, prefix) for d in documents]
    assert docs == [lm.tok_encode(d) for d in documents]
    ours = rolling_loglikelihood(tiny_model, docs, max_length=64, prefix_token=prefix, batch_size=3)
    assert len(docs[0]) > 3 * 64 and len(docs[0]) % 64  # several windows, a short last one
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert sum(ours) == pytest.approx(sum(theirs), rel=1e-6)


@torch.no_grad()
def mc_accuracy(model, tokenizer) -> float:
    """lm-eval's multiple-choice acc, computed here: the choice of highest summed log-prob,
    its tokens split off the encoded question+" "+choice as lm-eval splits them."""
    right = 0
    for i, record in enumerate(MC):
        context = tokenizer.encode(record["question"])
        scores = []
        for choice in record["choices"]:
            whole = tokenizer.encode(f"{record['question']} {choice}")
            cont = whole[len(context) :]
            logits = model(torch.tensor([whole[:-1]])).logits[0].log_softmax(-1)
            rows = range(len(whole) - 1 - len(cont), len(whole) - 1)
            scores.append(sum(logits[r, t].item() for r, t in zip(rows, cont)))
        right += int(max(range(3), key=scores.__getitem__) == i % 3)
    return right / len(MC)


@pytest.mark.slow
def test_harness_and_rolling_perplexity_in_one_run(
    tiny_model_dir, tiny_model, tiny_tokenizer, tasks_dir, documents, tmp_path, capsys
):
    """`--harness FOLDER --perplexity.method rolling`: lm-eval's numbers and llmkit's agree,
    and both land in eval_results.json, its model-index and the printed table."""
    out = tmp_path / "out"
    code = evaluate(
        "--model", str(tiny_model_dir),
        "--data", str(tasks_dir / "pages.jsonl"),
        "--text_column", "page",
        "--perplexity.method", "rolling",
        "--harness", str(tasks_dir),
        "--output_dir", str(out),
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "eval_results.json").read_text())
    metrics = report["metrics"]
    for name in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert metrics[name] == pytest.approx(metrics[f"tiny_wikitext/{name}"], rel=1e-6)
        assert f"tiny_wikitext/{name}" in printed

    # lm-eval's definitions, from the documents themselves
    ll = metrics["loglikelihood"]
    words = sum(len(d.split()) + (d[-1:].isspace()) + (d[:1].isspace()) for d in documents)
    nbytes = sum(len(d.encode()) for d in documents)
    assert metrics["word_perplexity"] == pytest.approx(math.exp(-ll / words), rel=1e-9)
    assert metrics["bits_per_byte"] == pytest.approx(-ll / nbytes / math.log(2), rel=1e-9)
    tokens = sum(len(tiny_tokenizer.encode(d)) for d in documents)
    assert metrics["perplexity"] == pytest.approx(math.exp(-ll / tokens), rel=1e-9)

    rows = {(r.get("task"), r["metric"]): r for r in report["results"]}
    acc = rows[("tiny_mc", "acc")]
    assert acc["value"] == pytest.approx(mc_accuracy(tiny_model, tiny_tokenizer))
    p, n = acc["value"], len(MC)
    assert acc["num_examples"] == n
    assert acc["stderr"] == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))  # lm-eval's
    options = acc["config"]["options"]
    assert options["task_version"] == 1.0 and len(options["task_hash"]) == 64
    assert report["harness"]["lm_eval_version"] == acc["config"]["source"].split()[-1]
    assert rows[("tiny_wikitext", "word_perplexity")]["config"]["options"]["task_version"] == 2.0

    card = {(e.task_name, e.metric_type): e for e in model_index_to_eval_results(
        report["model_index"])[1]}  # fmt: skip
    assert card[("tiny_mc", "acc")].metric_value == acc["value"]
    assert card[("tiny_mc", "acc")].metric_args["task_hash"] == options["task_hash"]
    assert card[("language modeling", "word_perplexity")].metric_value == metrics["word_perplexity"]


def test_task_yaml_file_with_limit_and_fewshot(tiny_model_dir, tasks_dir, tmp_path):
    """One YAML file alone (no --data), --harness.limit and --harness.num_fewshot pass through."""
    out = tmp_path / "out"
    code = evaluate(
        "--model", str(tiny_model_dir),
        "--harness", str(tasks_dir / "tiny_mc.yaml"),
        "--harness.limit", "2",
        "--harness.num_fewshot", "1",
        "--harness.batch_size", "2",
        "--output_dir", str(out),
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "eval_results.json").read_text())
    (row,) = report["results"]
    assert (row["task"], row["num_examples"]) == ("tiny_mc", 2)
    assert row["config"]["options"]["num_fewshot"] == 1
    assert report["harness"]["n-samples"]["tiny_mc"] == {"original": 4, "effective": 2}


@pytest.mark.slow
def test_unknown_harness_task(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = evaluate("--model", str(tiny_model_dir), "--harness", "hellaswagg", "--output_dir",
                    str(out))  # fmt: skip
    check_error(code, out, capsys, "unknown lm-eval task 'hellaswagg'", "hellaswag",
                "lm-eval ls tasks")  # fmt: skip


def test_task_needing_the_hub_while_offline(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    task = tmp_path / "hub_task.yaml"
    task.write_text(
        "task: hub_wikitext\ndataset_path: EleutherAI/wikitext_document_level\n"
        "dataset_name: wikitext-2-raw-v1\noutput_type: loglikelihood_rolling\n"
        'test_split: test\ndoc_to_text: ""\ndoc_to_target: "{{page}}"\n'
        "metric_list:\n  - metric: word_perplexity\n"
    )
    out = tmp_path / "out"
    code = evaluate("--model", str(tiny_model_dir), "--harness", str(task), "--output_dir",
                    str(out))  # fmt: skip
    check_error(code, out, capsys, "'EleutherAI/wikitext_document_level'", "wikitext-2-raw-v1",
                "offline")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--harness", "no/such/tasks.yaml"], "no such task YAML file or folder"),
        (["--harness", "recipes"], "no lm-eval task defined there"),
        (["--harness", "x.yaml", "--harness.limit", "2.5"], "harness.limit must be"),
        (["--harness", "x.yaml", "--harness.num_fewshot", "-1"], "harness.num_fewshot"),
        (["--data", "x.txt", "--perplexity.method", "rolling", "--perplexity.stride", "8"],
         "perplexity.stride does not apply"),
    ],
)  # fmt: skip
def test_bad_harness_options(tiny_model_dir, tmp_path, capsys, monkeypatch, extra, expected):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    code = evaluate("--model", str(tiny_model_dir), "--output_dir", str(out), *extra)
    check_error(code, out, capsys, expected)


def test_harness_without_lm_eval_installed(tiny_model_dir, tasks_dir, tmp_path):
    """A shadow lm_eval package whose import fails stands for a missing install."""
    shadow = tmp_path / "shadow" / "lm_eval"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named lm_eval')\n")
    out = tmp_path / "out"
    env = os.environ | {"PYTHONPATH": f"{shadow.parent}{os.pathsep}{ROOT}"}
    proc = subprocess.run(
        [sys.executable, "-m", "llmkit", "evaluate", "--model", str(tiny_model_dir),
         "--harness", str(tasks_dir), "--output_dir", str(out), "--show_progress", "false"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert err == ["error: --harness needs lm-evaluation-harness: pip install 'llmkit[harness]'"]
    assert not out.exists()


@pytest.mark.slow
def test_two_processes_under_accelerate_launch(
    tiny_model_dir, tiny_model, tiny_tokenizer, tasks_dir, documents, tmp_path
):
    """Two gloo processes share the requests; rank 0 alone writes, with one process's numbers."""
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
        "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "llmkit", "evaluate", "--model", str(tiny_model_dir), "--harness", str(tasks_dir),
        "--output_dir", str(out), "--show_progress", "false",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results: ") == 1  # only rank 0 reports
    metrics = json.loads((out / "eval_results.json").read_text())["metrics"]
    assert metrics["tiny_mc/acc"] == pytest.approx(mc_accuracy(tiny_model, tiny_tokenizer))
    prefix = lm_eval_prefix_token(tiny_tokenizer)
    docs = [lm_eval_encode(tiny_tokenizer, d, prefix) for d in documents]
    ll = sum(rolling_loglikelihood(tiny_model, docs, max_length=256, prefix_token=prefix))
    nbytes = sum(len(d.encode()) for d in documents)
    assert metrics["tiny_wikitext/byte_perplexity"] == pytest.approx(math.exp(-ll / nbytes))
