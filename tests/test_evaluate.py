"""`llmkit evaluate` end to end through the CLI on a saved tiny model: the numbers it writes
equal independent computations, and bad input fails in one line with nothing written."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import check_error, make_tiny_model
from huggingface_hub.repocard_data import model_index_to_eval_results

import llmkit
from llmkit import config as config_lib
from llmkit.cli import main
from llmkit.config import EvaluateConfig
from llmkit.evaluation.metrics import compute_metrics
from llmkit.evaluation.perplexity import perplexity, texts_to_stream
from llmkit.generation.batched import keep_last
from llmkit.tasks import get_task
from llmkit.tasks.data import load_task_records

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "evaluate"
REL = 1e-4
QA_PROMPT_TOKENS = 48


@pytest.fixture(scope="module")
def squad(shared_data) -> Path:
    return shared_data / "qa" / "squad_v2_sample.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer, squad) -> Path:
    """A tiny model fitted for a few steps to the SQuAD sample, saved with its tokenizer.

    Trained on the prompts' last tokens and the answers, so some predictions are right,
    some wrong and some "unanswerable", and its next-token scores depend on the context.
    """
    tok = tiny_tokenizer
    task = get_task("qa", {"allow_no_answer": True})
    seqs = []
    for r in load_task_records(task, [str(squad)], "test"):
        prompt = keep_last(tok(task.prompt(r))["input_ids"], QA_PROMPT_TOKENS, None)
        seqs.append(prompt + tok(task.target(r) + "\n")["input_ids"])
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = labels[i, : len(s)] = torch.tensor(s)
    model = make_tiny_model(len(tok), seed=3)
    model.config.pad_token_id, model.config.eos_token_id = tok.pad_token_id, tok.eos_token_id
    model.config.bos_token_id = tok.bos_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("model")
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory, shakespeare_text) -> Path:
    """A folder of split files: evaluation must read test.txt only."""
    folder = tmp_path_factory.mktemp("text")
    (folder / "train.txt").write_text(shakespeare_text[:3000])
    (folder / "test.txt").write_text(shakespeare_text[100_000:101_200])
    return folder


def evaluate(*args: str) -> int:
    return main(["evaluate", "--show_progress", "false", *args])


def load(out: Path) -> dict:
    return json.loads((out / "eval_results.json").read_text())


@torch.no_grad()
def token_by_token_nll(model, ids: torch.Tensor, context: int, stride: int) -> float:
    """Independent reference: one forward per target on the context its window gives it.

    Windows start at multiples of ``stride``; target t is scored by the first window that
    holds it as a target, i.e. the one starting at ``max(0, ceil((t - context) / stride))``
    strides, and sees tokens ``start .. t - 1``.
    """
    total = 0.0
    for t in range(1, len(ids)):
        start = max(0, math.ceil((t - context) / stride)) * stride
        logits = model(ids[None, start:t]).logits[0, -1].double()
        total -= torch.log_softmax(logits, dim=-1)[ids[t]].item()
    return total


def test_perplexity_equals_token_by_token_reference(model_dir, text_dir, tmp_path, capsys):
    out = tmp_path / "ppl"
    args = ["--model", str(model_dir), "--data", str(text_dir), "--output_dir", str(out)]
    window = ["--perplexity.context_length", "40", "--perplexity.stride", "16"]
    assert evaluate(*args, *window, "--batch_size", "3") == 0
    report = load(out)

    # The same stream built by hand: test.txt's paragraphs, each encoded, joined by EOS.
    tok = llmkit_tokenizer(model_dir)
    paragraphs = [p for p in (text_dir / "test.txt").read_text().split("\n\n") if p.strip()]
    stream: list[int] = []
    for i, p in enumerate(paragraphs):
        stream += ([tok.eos_token_id] if i else []) + tok(p, add_special_tokens=False)["input_ids"]
    ids = torch.tensor(stream)
    model = plain_model(model_dir)
    nll = token_by_token_nll(model, ids, 40, 16)
    expected = math.exp(nll / (len(ids) - 1))

    (result,) = report["results"]
    assert result["metric"] == "perplexity"
    assert result["value"] == pytest.approx(expected, rel=REL)
    assert result["num_tokens"] == report["num_tokens"] == len(ids) - 1
    assert result["num_examples"] == report["num_examples"] == len(paragraphs)
    assert result["split"] == "test"
    assert result["config"]["options"]["context_length"] == 40
    assert result["config"]["options"]["stride"] == 16
    assert report["metrics"]["mean_nll"] == pytest.approx(nll / (len(ids) - 1), rel=REL)
    assert report["details"]["windows"] == 1 + math.ceil((len(ids) - 1 - 40) / 16)

    # Guards the reference: with less context the score moves by far more than REL.
    short = perplexity(model, ids, context_length=4, stride=4).nll_sum
    assert nll / short < 1 - 20 * REL

    # Provenance: version, fingerprint = sha256 of the weights, model-index for a card.
    weights = (model_dir / "model.safetensors").read_bytes()
    assert report["model"]["fingerprint"] == "sha256:" + hashlib.sha256(weights).hexdigest()
    assert report["llmkit_version"] == llmkit.__version__
    name, (card_result,) = model_index_to_eval_results(report["model_index"])
    assert name == model_dir.name
    assert card_result.metric_type == "perplexity" and card_result.dataset_split == "test"
    assert card_result.metric_value == result["value"]
    assert card_result.metric_args == {"context_length": 40, "stride": 16, "text_column": "text"}

    printed = capsys.readouterr().out
    assert "perplexity" in printed and f"{result['value']:.4f}" in printed
    assert not (out / "predictions.jsonl").exists()
    saved = config_lib.build(EvaluateConfig, out / "llmkit_config.yaml", {})
    assert saved.perplexity.context_length == 40 and saved.data == [str(text_dir)]

    # The Python API gives the same number; overwrite replaces the earlier results.
    api = llmkit.evaluate(
        model=str(model_dir),
        data=[str(text_dir)],
        output_dir=str(out),
        overwrite=True,
        batch_size=8,
        show_progress=False,
        perplexity={"context_length": 40, "stride": 16},
    )
    assert api.metrics["perplexity"] == pytest.approx(result["value"], rel=1e-6)
    assert api.output_dir == out and load(out)["results"][0]["value"] == api.metrics["perplexity"]


def test_default_window_is_the_model_length_with_half_stride(model_dir, text_dir, tmp_path):
    out = tmp_path / "ppl"
    assert evaluate("--model", str(model_dir), "--data", str(text_dir / "test.txt"),
                    "--output_dir", str(out)) == 0  # fmt: skip
    options = load(out)["results"][0]["config"]["options"]
    assert (options["context_length"], options["stride"]) == (256, 128)


def test_qa_predictions_and_results_agree(model_dir, squad, tmp_path, capsys):
    out = tmp_path / "qa"
    code = evaluate(
        "--model", str(model_dir), "--task", "qa", "--task.options.allow_no_answer", "true",
        "--data", str(squad), "--output_dir", str(out), "--batch_size", "4",
        "--max_prompt_tokens", str(QA_PROMPT_TOKENS), "--generation", "{max_new_tokens: 8}",
    )  # fmt: skip
    assert code == 0
    report = load(out)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]

    assert len(rows) == report["num_examples"] == 14
    assert [r["metric"] for r in report["results"]] == ["exact_match", "f1"]
    assert all(r["num_examples"] == 14 for r in report["results"])
    assert sum(1 for r in rows if r["references"] == []) == 6  # SQuAD 2.0 unanswerable
    assert rows[0]["id"] == "56ddde6b9a695914005b9628" and rows[0]["prompt"].endswith("Answer:")

    # The written metrics are exactly what the metric layer gives on the written predictions.
    preds, refs = [r["prediction"] for r in rows], [r["references"] for r in rows]
    assert compute_metrics(["exact_match", "f1"], preds, refs) == report["metrics"]
    for name in ("exact_match", "f1"):
        per_example = [r["scores"][name] for r in rows]
        assert sum(per_example) / 14 == pytest.approx(report["metrics"][name], abs=1e-9)
    # The fitted model gets some right and some wrong, so the checks above compare real numbers.
    assert 0 < report["metrics"]["exact_match"] < 100
    assert report["metrics"]["exact_match"] <= report["metrics"]["f1"]

    details = report["details"]
    assert details["generation"]["max_new_tokens"] == 8
    assert details["generation"]["max_prompt_tokens"] == QA_PROMPT_TOKENS
    assert details["truncated_prompts"] == 14  # every SQuAD prompt is longer than 48 tokens
    assert report["num_tokens"] == details["prompt_tokens"] == 14 * QA_PROMPT_TOKENS
    (entry,) = report["model_index"]
    assert entry["results"][0]["task"]["type"] == "question-answering"
    assert {m["type"] for m in entry["results"][0]["metrics"]} == {"exact_match", "f1"}
    printed = capsys.readouterr().out
    assert "exact_match" in printed and "f1" in printed


def test_every_recipe_parses_and_says_how_to_run_it():
    recipes = sorted(RECIPES.glob("*.yaml"))
    assert {p.stem for p in recipes} >= {"perplexity", "qa", "summarization", "translation"}
    for path in recipes:
        first = path.read_text().splitlines()[0]
        assert first == f"# run: llmkit evaluate --recipe recipes/evaluate/{path.name}", path
        cfg = config_lib.build(EvaluateConfig, path, {})
        assert cfg.model and cfg.data
    qa = config_lib.build(EvaluateConfig, RECIPES / "qa.yaml", {"task.name": "summarization"})
    assert qa.task.name == "summarization"


def test_lora_adapter_folder_is_evaluated_on_its_base(model_dir, text_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    adapted = get_peft_model(plain_model(model_dir), lora)
    adapter = tmp_path / "adapter"
    adapted.save_pretrained(adapter)  # adapter weights only; the tokenizer is the base's
    out = tmp_path / "out"
    window = ["--perplexity.context_length", "64", "--perplexity.stride", "64"]
    assert evaluate("--model", str(adapter), "--data", str(text_dir), "--output_dir", str(out),
                    *window) == 0  # fmt: skip
    report = load(out)

    tok = llmkit_tokenizer(model_dir)
    docs = [p for p in (text_dir / "test.txt").read_text().split("\n\n") if p.strip()]
    stream = texts_to_stream(tok, docs)
    merged = adapted.merge_and_unload().eval()
    expected = perplexity(merged, stream, context_length=64, stride=64).perplexity
    base = perplexity(plain_model(model_dir), stream, context_length=64, stride=64).perplexity
    assert report["metrics"]["perplexity"] == pytest.approx(expected, rel=REL)
    assert abs(expected - base) > 10 * REL * base  # the adapter changes the model
    adapter_hash = hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes())
    base_hash = hashlib.sha256((model_dir / "model.safetensors").read_bytes())
    assert report["model"]["fingerprint"] == (
        f"sha256:{adapter_hash.hexdigest()} on sha256:{base_hash.hexdigest()}"
    )


# --- bad input: one line, exit code 2, nothing written ----------------------------------------


def folder_without(model_dir: Path, tmp_path: Path, *patterns: str) -> Path:
    folder = tmp_path / "incomplete"
    shutil.copytree(model_dir, folder)
    for pattern in patterns:
        for f in folder.glob(pattern):
            f.unlink()
    return folder


def test_model_folder_without_weights(model_dir, text_dir, tmp_path, capsys):
    folder = folder_without(model_dir, tmp_path, "*.safetensors")
    out = tmp_path / "out"
    code = evaluate("--model", str(folder), "--data", str(text_dir), "--output_dir", str(out))
    check_error(code, out, capsys, str(folder), "no weights (*.safetensors)", "save_pretrained")


def test_model_folder_without_tokenizer(model_dir, text_dir, tmp_path, capsys):
    folder = folder_without(model_dir, tmp_path, "tokenizer*")
    out = tmp_path / "out"
    code = evaluate("--model", str(folder), "--data", str(text_dir), "--output_dir", str(out))
    check_error(code, out, capsys, str(folder), "no tokenizer", "tokenizer.save_pretrained")


def test_missing_model_folder(text_dir, tmp_path, capsys):
    out = tmp_path / "out"
    missing = tmp_path / "nope"
    code = evaluate("--model", str(missing), "--data", str(text_dir), "--output_dir", str(out))
    check_error(code, out, capsys, str(missing), "not found")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--metrics", "perplexity,blue"],
            ["unknown metric 'blue'", "perplexity", "bleu", "rouge"],
        ),
        (["--metrics", "bleu"], ["metric bleu needs references", "--task"]),
        (["--task", "qa", "--metrics", "perplexity"], ["perplexity is computed on plain text"]),
        (["--task", "poetry"], ["unknown task 'poetry'", "qa", "summarization"]),
        (["--metric_options", "{rouge: {use_stemmer: true}}"], ["metric_options.rouge"]),
        (["--perplexity.context_length", "8", "--perplexity.stride", "9"], ["stride 9"]),
        (["--perplexity.context_length", "4096"], ["4096", "max_position_embeddings=256"]),
        (["--max_examples", "0"], ["max_examples must be >= 1"]),
        (["--split", "validation"], ["no validation file", "text"]),
        (["--split", "nosuchsplit"], ["no nosuchsplit file", "its splits are train, test"]),
        (["--device", "gpu"], ["device must be"]),
    ],
)
def test_bad_options(model_dir, text_dir, tmp_path, capsys, extra, expected):
    out = tmp_path / "out"
    code = evaluate(
        "--model", str(model_dir), "--data", str(text_dir), "--output_dir", str(out), *extra
    )
    check_error(code, out, capsys, *expected)


def test_output_dir_may_not_replace_the_model(model_dir, text_dir, tmp_path, capsys):
    code = evaluate(
        "--model", str(model_dir), "--data", str(text_dir), "--output_dir", str(model_dir.parent),
        "--overwrite",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "would replace the model folder" in err
    assert (model_dir / "model.safetensors").is_file()


def test_empty_split(model_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"text": "some words"}\n')
    (data / "test.jsonl").write_text('{"text": "   "}\n{"text": ""}\n')
    out = tmp_path / "out"
    code = evaluate("--model", str(model_dir), "--data", str(data), "--output_dir", str(out))
    check_error(code, out, capsys, "test.jsonl", "holds no text")


def test_empty_task_split(model_dir, tmp_path, capsys):
    data = tmp_path / "test.jsonl"
    data.write_text("\n\n")
    out = tmp_path / "out"
    code = evaluate(
        "--model", str(model_dir), "--task", "qa", "--data", str(data), "--output_dir", str(out)
    )
    check_error(code, out, capsys, "test split", "is empty")


def test_task_data_without_the_task_columns(model_dir, tmp_path, capsys):
    data = tmp_path / "test.jsonl"
    data.write_text('{"context": "Paris is in France.", "query": "Where is Paris?"}\n')
    out = tmp_path / "out"
    code = evaluate(
        "--model", str(model_dir), "--task", "qa", "--data", str(data), "--output_dir", str(out)
    )
    check_error(code, out, capsys, "test.jsonl line 1", "no column 'answers'", "answer_text")


def test_references_unusable_by_the_metric(model_dir, squad, tmp_path, capsys):
    """BLEU needs a reference per example; unanswerable SQuAD questions have none."""
    out = tmp_path / "out"
    code = evaluate(
        "--model", str(model_dir), "--task", "qa", "--task.options", "{allow_no_answer: true}",
        "--data", str(squad), "--metrics", "bleu", "--output_dir", str(out),
    )  # fmt: skip
    check_error(code, out, capsys, "task qa", "bleu", "references[3] is empty")


def test_unknown_split_of_task_data(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    data = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa"
    code = evaluate(
        "--model", str(model_dir), "--task", "qa", "--data", str(data), "--split", "nosuchsplit",
        "--output_dir", str(out),
    )  # fmt: skip
    check_error(code, out, capsys, "nosuchsplit", "train, validation, test")


def test_unknown_generation_setting_and_metric_option(model_dir, squad, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--model", str(model_dir), "--task", "qa", "--task.options", "{allow_no_answer: true}",
            "--data", str(squad), "--output_dir", str(out)]  # fmt: skip
    check_error(evaluate(*base, "--generation", "{max_tokens: 5}"), out, capsys, "max_tokens")
    code = evaluate(*base, "--metrics", "f1", "--metric_options", "{f1: {stem: true}}")
    check_error(code, out, capsys, "f1", "unknown option 'stem'")


def llmkit_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def plain_model(folder: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).eval()
