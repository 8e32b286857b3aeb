"""End-to-end fine-tuning through the CLI: QA scores rise, the output folder holds what it says,
the best validation pass is the model saved, other tasks and user-defined tasks run too."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from accelerate import Accelerator
from conftest import finetune_args, make_tiny_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmkit import config as config_lib
from llmkit.cli import main
from llmkit.config import FinetuneConfig
from llmkit.data.tokenizer import train_tokenizer
from llmkit.tasks import get_task
from llmkit.tasks.data import load_task_records
from llmkit.tasks.encode import PadCollate, encode_records
from llmkit.training.logging import read_metrics
from llmkit.training.validation import validation_loss

REPO = Path(__file__).resolve().parents[1]
QA = REPO / "data" / "tasks" / "qa"


def head(src: Path, dst: Path, n: int) -> Path:
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[:n]))
    return dst


CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Tokyo", "Delhi", "Quito"]
JOBS = ["baker", "nurse", "pilot", "judge", "miner", "tailor", "farmer", "singer"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fi", "go"]


def small_qa_record(rng: random.Random, i: int) -> dict:
    """Two facts about a made-up person and a question about one: SQuAD layout."""
    name = "".join(rng.sample(SYLLABLES, 2)).capitalize()
    city, job = rng.choice(CITIES), rng.choice(JOBS)
    facts = [f"{name} lives in {city}.", f"{name} is a {job}."]
    rng.shuffle(facts)
    context = " ".join(facts)
    question, answer = rng.choice(
        [(f"Where does {name} live?", city), (f"What is {name}'s job?", job)]
    )
    return {
        "id": f"q{i}",
        "context": context,
        "question": question,
        "answers": {"text": [answer], "answer_start": [context.index(answer)]},
    }


@pytest.fixture(scope="module")
def small_qa(tmp_path_factory) -> tuple[Path, Path]:
    """A small QA set (train/validation/test files) and a fresh 2-layer model for it."""
    folder = tmp_path_factory.mktemp("small-qa")
    rng = random.Random(0)
    splits = {"train": 1000, "validation": 40, "test": 100}
    rows = {s: [small_qa_record(rng, i) for i in range(n)] for s, n in splits.items()}
    for split, records in rows.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    texts = [f"{r['context']}\n{r['question']}" for r in rows["train"]]
    tok = train_tokenizer(texts, vocab_size=512)
    model = make_tiny_model(len(tok))
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.config, name, getattr(tok, name))
    model.save_pretrained(folder / "model")
    tok.save_pretrained(folder / "model")
    return folder, folder / "model"


def test_finetuning_raises_exact_match_and_f1_on_held_out_questions(tmp_path, small_qa):
    """The `make finetune` claim, small: a fresh tiny model learns extractive QA on questions
    about people it never saw (the answer is a word of the context chosen by the question)."""
    data, base = small_qa
    out = tmp_path / "qa"
    args = finetune_args(out, base, data, "--task.max_length", "64")
    args += ["--train.max_steps", "200", "--train.per_device_train_batch_size", "32"]
    args += ["--train.learning_rate", "5e-3", "--train.weight_decay", "0"]
    args += ["--eval.test_max_examples", "100", "--eval.batch_size", "50"]
    assert main(args) == 0
    results = json.loads((out / "finetune_results.json").read_text())
    before, after = results["test"]["before"], results["test"]["after"]
    assert results["test"]["num_examples"] == 100
    assert before["exact_match"] == 0.0 and before["f1"] < 5.0
    assert after["exact_match"] >= 60.0 and after["f1"] >= 60.0


def test_output_folder_and_best_validation_pass(tmp_path, tiny_model_dir):
    train = head(QA / "train.jsonl", tmp_path / "train.jsonl", 64)
    val = head(QA / "validation.jsonl", tmp_path / "val.jsonl", 16)
    out = tmp_path / "run"
    args = finetune_args(out, tiny_model_dir, train, "--data.validation_files", str(val))
    args += ["--eval.test_files", str(val), "--eval.every_n_steps", "2"]
    args += ["--train.max_steps", "8", "--train.learning_rate", "0.1"]
    args += ["--train.lr_scheduler_type", "constant", "--train.warmup_ratio", "0"]
    args += ["--eval.metric_for_best_model", "val_loss"]
    assert main(args) == 0

    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "llmkit_config.yaml",
        "metrics.jsonl",
        "loss.png",
        "README.md",
        "finetune_results.json",
        "eval_results.json",
        "predictions.jsonl",
    ):
        assert (out / name).is_file(), name
    assert not (out / "best").exists(), "the best pass is restored, not left beside the model"

    passes = [r for r in read_metrics(out / "metrics.jsonl") if "val_loss" in r]
    assert [r["step"] for r in passes] == [0, 2, 4, 6, 8]
    assert all({"val_exact_match", "val_f1"} <= set(r) for r in passes)
    best = min(passes[1:], key=lambda r: r["val_loss"])
    assert best["step"] != 8, "this setting must make a middle pass the best, or the test is moot"
    results = json.loads((out / "finetune_results.json").read_text())
    assert results["best"] == {"metric": "val_loss", "value": best["val_loss"]}
    assert results["data"]["train"]["examples"] == 64

    # The saved model is the best pass's: its validation loss is that pass's number.
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    task = get_task("qa")
    encoded, _ = encode_records(task, tok, load_task_records(task, [str(val)], "validation"), 192)
    loss = validation_loss(
        model, encoded, Accelerator(cpu=True), batch_size=16, collate=PadCollate(tok.pad_token_id)
    )["val_loss"]
    assert loss == pytest.approx(best["val_loss"], abs=1e-5)

    predictions = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 4 and {"prompt", "references", "prediction"} <= set(predictions[0])
    card = (out / "README.md").read_text()
    for text in (f"Base model: {tiny_model_dir}", "Task: qa", f"Data: {train}", "full fine-tuning"):
        assert text in card
    assert "model-index" in card and "Exact Match" in card
    saved = config_lib.build(FinetuneConfig, out / "llmkit_config.yaml", {})
    assert saved.eval.metric_for_best_model == "val_loss" and saved.train.max_steps == 8


def test_translation_on_wmt_files(tmp_path, tiny_model_dir, shared_data):
    pairs = shared_data / "translation" / "wmt16_en_ro_sample.jsonl"
    out = tmp_path / "mt"
    args = finetune_args(out, tiny_model_dir, pairs, "--task", "translation")
    args += ["--task.options.target_lang", "ro", "--data.validation_files", str(pairs)]
    args += ["--eval.test_files", str(pairs)]
    assert main(args) == 0
    report = json.loads((out / "eval_results.json").read_text())
    assert {r["metric"] for r in report["results"]} == {"bleu", "chrf"}
    assert report["results"][0]["num_examples"] == 4
    assert yaml.safe_load((out / "llmkit_config.yaml").read_text())["task"]["options"] == {
        "target_lang": "ro"
    }


def test_a_task_defined_here_fine_tunes_without_changes_elsewhere(tmp_path, tiny_model_dir):
    task_file = tmp_path / "capital.yaml"
    task_file.write_text(
        "name: capital\n"
        "description: name the capital of a country\n"
        "columns: {country: [nation], capital: [city]}\n"
        'prompt: "Country: {country}\\nCapital:"\n'
        'target: " {capital}"\n'
        "metrics: [exact_match]\n"
        "generation: {max_new_tokens: 6}\n"
    )
    pairs = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Peru", "Lima")] * 4
    data = tmp_path / "capitals.jsonl"
    data.write_text("".join(json.dumps({"nation": c, "city": k}) + "\n" for c, k in pairs))
    out = tmp_path / "capital"
    args = finetune_args(out, tiny_model_dir, data, "--task", str(task_file))
    args += ["--data.validation_files", str(data), "--eval.test_files", str(data)]
    assert main(args) == 0
    results = json.loads((out / "finetune_results.json").read_text())
    assert results["task"] == "capital" and set(results["test"]["after"]) == {"exact_match"}
    assert "Task: capital" in (out / "README.md").read_text()


def test_every_recipe_parses_and_says_how_to_run_it():
    recipes = sorted((REPO / "recipes" / "finetune").glob("*.yaml"))
    assert {r.stem for r in recipes} >= {"qa", "qa_lora", "summarization", "translation"}
    for recipe in recipes:
        first = recipe.read_text().splitlines()[0]
        assert first == f"# run: llmkit finetune --recipe recipes/finetune/{recipe.name}"
        cfg = config_lib.build(FinetuneConfig, recipe, {})
        get_task(cfg.task.name, cfg.task.options)
        for source in cfg.data.train_files:
            assert (REPO / source).exists(), f"{recipe.name}: {source}"
