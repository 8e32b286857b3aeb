"""`llmkit push` against a local fake Hub (tests/hub_server.py) reached through HF_ENDPOINT.

llmkit reads HF_ENDPOINT when it pushes, so most tests run the CLI in this process; one runs
it as a real subprocess (HF_ENDPOINT set before huggingface_hub is imported) to check what
the process prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import finetune_args, pretrain_args
from hub_server import FakeHub
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from llmkit import config as config_lib
from llmkit.cards import CardInfo, HubCardInfo, render_hub_card, write_card
from llmkit.cli import main
from llmkit.config import FinetuneConfig
from llmkit.evaluation.report import build_report, write_results
from llmkit.hub.secrets import find_secret

TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
SENT = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "llmkit_config.yaml",
    "eval_results.json",
}
LEFT_OUT = {
    "checkpoints/checkpoint-0000004/optimizer.bin",
    "checkpoints/checkpoint-0000004/model.safetensors",
    "tensorboard/events.out.tfevents.1.host",
    "predictions.jsonl",
    "metrics.jsonl",
    "pytorch_model.bin",
}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    server = FakeHub(token=TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    yield server
    server.close()


@pytest.fixture
def base_dir(tmp_path, tiny_model_dir) -> Path:
    """A base model whose card states a license and a language."""
    base = tmp_path / "base"
    base.mkdir()
    for f in tiny_model_dir.iterdir():
        (base / f.name).write_bytes(f.read_bytes())
    card = "---\nlicense: mit\nlanguage:\n- en\n---\n\n# base\n"
    (base / "README.md").write_text(card)
    return base


@pytest.fixture
def run_dir(tmp_path, tiny_model_dir, base_dir) -> Path:
    """A fine-tune's folder as llmkit writes it: model, card, config and eval_results.json,
    plus the files that must stay home."""
    run = tmp_path / "run"
    run.mkdir()
    for f in tiny_model_dir.iterdir():
        (run / f.name).write_bytes(f.read_bytes())
    cfg = config_lib.from_dict(
        FinetuneConfig,
        {
            "output_dir": str(run),
            "model": {"name_or_path": str(base_dir)},
            "data": {"train_files": ["squad"]},
        },
    )
    config_lib.save(cfg, run)
    scores = {"exact_match": {"exact_match": 25.0}, "f1": {"f1": 41.5}}
    report = build_report(
        model={"name_or_path": str(run), "fingerprint": "sha256:0", "parameters": 1},
        task="qa",
        data=["squad"],
        split="test",
        dataset_config=None,
        scores=scores,
        configs={},
        num_examples=4,
        num_tokens=100,
        details={},
    )
    write_results(run, report)
    write_card(run, CardInfo(title="run", summary="A test run.", base_model=str(base_dir)))
    for rel in LEFT_OUT:
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(b"not for the Hub " + rel.encode())
    return run


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_push_sends_the_allow_listed_files_and_a_card_with_the_evaluation(hub, run_dir, capsys):
    before = snapshot(run_dir)
    assert main(["push", str(run_dir), "--repo-id", "alice/tiny-qa"]) == 0
    out, err = capsys.readouterr()

    assert set(hub.files) == SENT
    for rel in SENT - {"README.md"}:
        assert hub.files[rel] == (run_dir / rel).read_bytes(), rel
    assert hub.created == [{"name": "tiny-qa", "organization": "alice", "visibility": "private"}]
    assert [c["revision"] for c in hub.commits] == ["main"]
    assert snapshot(run_dir) == before, "the local folder must not change"

    card = ModelCard(hub.files["README.md"].decode())
    meta = card.data.to_dict()
    assert meta["license"] == "mit" and meta["language"] == ["en"]  # from the base's card
    assert "base_model" not in meta  # a local folder is no Hub name
    assert meta["datasets"] == ["squad"] and meta["library_name"] == "transformers"
    report = json.loads((run_dir / "eval_results.json").read_text())
    name, pushed = model_index_to_eval_results(meta["model-index"])
    assert name == "tiny-qa"
    assert pushed == model_index_to_eval_results(report["model_index"])[1]
    assert [(r.metric_type, r.metric_value) for r in pushed] == [
        ("exact_match", 25.0),
        ("f1", 41.5),
    ]
    assert 'from_pretrained("alice/tiny-qa")' in card.text and "PATH_OR_REPO" not in card.text
    assert "llmkit finetune --recipe llmkit_config.yaml" in card.text
    assert "hf download alice/tiny-qa llmkit_config.yaml" in card.text
    # the local card is the one the pipeline wrote
    assert "PATH_OR_REPO" in (run_dir / "README.md").read_text()

    # The token travels only in the Authorization header.
    for request in hub.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert TOKEN not in json.dumps(others) and TOKEN.encode() not in request.body
    assert TOKEN not in out + err
    assert all(TOKEN.encode() not in p.read_bytes() for p in run_dir.rglob("*") if p.is_file())
    assert "pushed to" in out and "private" in out


def test_dry_run_lists_files_sizes_left_out_and_the_card_and_sends_nothing(
    hub, run_dir, capsys, monkeypatch
):
    monkeypatch.delenv("HF_TOKEN")  # a dry run needs no token
    code = main(["push", str(run_dir), "--repo-id", "alice/tiny-qa", "--dry-run", "--public"])
    out = capsys.readouterr().out
    assert code == 0 and hub.requests == []
    assert "alice/tiny-qa (public): 8 files" in out
    size = (run_dir / "model.safetensors").stat().st_size
    assert re.search(rf"model\.safetensors +{size / 1024:.1f} KB", out), out
    assert "checkpoints/checkpoint-0000004/optimizer.bin: training checkpoint" in out
    assert "tensorboard/events.out.tfevents.1.host: TensorBoard logs" in out
    assert "pytorch_model.bin: pickle file" in out
    assert "predictions.jsonl: not on the allow-list (add it with --include PATTERN)" in out
    card = out.split("--- README.md as pushed ---\n", 1)[1]
    assert ModelCard(card).data.to_dict()["license"] == "mit"
    assert "the repo is private" not in card


def test_include_adds_files_and_a_branch_is_created(hub, run_dir, capsys):
    args = ["push", str(run_dir), "--repo-id", "alice/tiny-qa", "--revision", "dev", "--public"]
    assert main([*args, "--include", "predictions.jsonl", "--include", "checkpoints"]) == 0
    assert set(hub.files) == SENT | {
        "predictions.jsonl",
        "checkpoints/checkpoint-0000004/optimizer.bin",
        "checkpoints/checkpoint-0000004/model.safetensors",
    }
    assert hub.files["predictions.jsonl"] == (run_dir / "predictions.jsonl").read_bytes()
    assert hub.created[0]["visibility"] == "public"
    assert hub.branches == ["dev"] and [c["revision"] for c in hub.commits] == ["dev"]
    assert hub.commits[0]["header"]["summary"] == "Upload run with llmkit"
    assert "--revision dev" in hub.files["README.md"].decode()


def test_create_pr_opens_a_pull_request(hub, run_dir, capsys):
    args = ["push", str(run_dir), "--repo-id", "alice/tiny-qa", "--create-pr"]
    assert main([*args, "--commit-message", "Better weights"]) == 0
    assert [(c["revision"], c["pr"]) for c in hub.commits] == [("main", True)]
    assert hub.commits[0]["header"]["summary"] == "Better weights"
    assert hub.branches == [] and set(hub.files) == SENT
    assert f"pushed to {hub.url}/alice/tiny-qa/discussions/1" in capsys.readouterr().out


def test_an_adapter_is_checked_on_its_base_and_pushed_with_a_peft_card(
    hub, tmp_path, base_dir, capsys
):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = tmp_path / "adapter"
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"]),
    )
    model.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(adapter)
    assert main(["push", str(adapter), "--repo-id", "alice/tiny-lora"]) == 0
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(hub.files)
    assert (
        hub.files["adapter_model.safetensors"]
        == (adapter / "adapter_model.safetensors").read_bytes()
    )
    card = ModelCard(hub.files["README.md"].decode())
    assert card.data.library_name == "peft" and card.data.license == "mit"
    assert 'AutoPeftModelForCausalLM.from_pretrained("alice/tiny-lora")' in card.text
    assert f"base model {base_dir} is a local folder" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fail, expected",
    [
        ({"create": 401}, ("401", "HF_TOKEN")),
        ({"create": 403}, ("403", "write access", "'alice'")),
        ({"create": 404}, ("404", "namespace 'alice'")),
        ({"commit": 403}, ("403", "write access")),
    ],
)
def test_hub_refusals_are_one_line(hub, run_dir, capsys, fail, expected):
    hub.fail.update(fail)
    before = snapshot(run_dir)
    code = main(["push", str(run_dir), "--repo-id", "alice/tiny-qa"])
    check_refused(code, capsys, *expected)
    assert hub.files == {} and snapshot(run_dir) == before


def test_a_wrong_token_is_refused_and_not_printed(hub, run_dir, capsys, monkeypatch):
    wrong = "hf_" + "z" * 34
    monkeypatch.setenv("HF_TOKEN", wrong)
    code = main(["push", str(run_dir), "--repo-id", "alice/tiny-qa"])
    check_refused(code, capsys, "401")
    assert hub.files == {}


def test_connection_refused_is_one_line(hub, run_dir, capsys, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    before = snapshot(run_dir)
    code = main(["push", str(run_dir), "--repo-id", "alice/tiny-qa"])
    check_refused(code, capsys, "cannot reach the Hub", str(port))
    assert snapshot(run_dir) == before


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--repo-id", "tiny-qa"], ("--repo-id 'tiny-qa'", "NAMESPACE/NAME")),
        (["--repo-id", "alice/tiny/qa"], ("NAMESPACE/NAME",)),
        (["--repo-id", "alice/tiny qa"], ("NAMESPACE/NAME",)),
        (["--repo-id", "alice/tiny-qa", "--revision", "dev..x"], ("--revision 'dev..x'",)),
        (["--repo-id", "alice/tiny-qa", "--revision", "my branch"], ("--revision",)),
    ],
)
def test_bad_repo_id_or_revision_sends_nothing(hub, run_dir, capsys, args, expected):
    check_refused(main(["push", str(run_dir), *args]), capsys, *expected)
    assert hub.requests == []


def test_a_folder_that_is_not_a_model_sends_nothing(hub, tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    code = main(["push", str(folder), "--repo-id", "alice/notes"])
    check_refused(code, capsys, str(folder), "not a model folder")
    assert hub.requests == []


def test_a_folder_without_safetensors_sends_nothing(
    hub, tmp_path, tiny_model, tiny_tokenizer, capsys
):
    import torch

    folder = tmp_path / "pickled"
    tiny_model.config.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    torch.save(tiny_model.state_dict(), folder / "pytorch_model.bin")
    check_refused(main(["push", str(folder), "--repo-id", "a/b"]), capsys, "safetensors")
    assert hub.requests == []


@pytest.mark.parametrize(
    "where, secret, kind",
    [
        ("llmkit_config.yaml", "hf_" + "Q" * 34, "Hugging Face token"),
        ("notes.txt", "sk-proj-" + "a1B2" * 8, "API key"),
        ("notes.txt", "ghp_" + "x" * 36, "GitHub token"),
        ("notes.txt", "AKIA" + "ABCDEFGHIJKLMNOP", "AWS"),
    ],
)
def test_a_file_holding_a_token_is_refused_without_showing_it(
    hub, run_dir, capsys, where, secret, kind
):
    path = run_dir / where
    with path.open("a") as fh:
        fh.write(f"# api_key = {secret}\n")
    code = main(["push", str(run_dir), "--repo-id", "alice/tiny-qa", "--include", "notes.txt"])
    err = check_refused(code, capsys, str(path), kind)
    assert secret not in err and secret[:8] not in err
    assert hub.requests == []


def test_a_token_in_safetensors_metadata_is_found(hub, run_dir, capsys):
    from safetensors.torch import load_file, save_file

    weights = run_dir / "model.safetensors"
    save_file(load_file(weights), weights, metadata={"format": "pt", "note": "hf_" + "M" * 34})
    code = main(["push", str(run_dir), "--repo-id", "alice/tiny-qa"])
    err = check_refused(code, capsys, str(weights), "Hugging Face token")
    assert hub.requests == [] and "hf_MMM" not in err


def test_the_token_in_use_is_found_whatever_its_shape(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"\x00" * 100 + b"my-own-secret-value" + b"\x00" * 100)
    assert find_secret(path) is None
    assert find_secret(path, (b"my-own-secret-value",), chunk_size=64) == "the Hub token in use"
    path.write_bytes(b"." * 60 + b"hf_" + b"k" * 34 + b"." * 60)  # across 64-byte chunks
    assert find_secret(path, chunk_size=64) == "a Hugging Face token"
    path.write_bytes(b"x-hf_" + b"k" * 34)  # part of a longer word is no token
    assert find_secret(path) is None


def test_the_hub_card_names_a_hub_base_model_and_datasets():
    local = "---\nlibrary_name: transformers\nbase_model: /tmp/base\n---\n\n# run\n\ntext\n"
    text = render_hub_card(
        local,
        HubCardInfo(
            repo_id="alice/m",
            title="m",
            base_model="Qwen/Qwen3-0.6B",
            license="apache-2.0",
            language=["en", "fr"],
            datasets=["rajpurkar/squad"],
        ),
    )
    meta = ModelCard(text).data.to_dict()
    assert meta["base_model"] == "Qwen/Qwen3-0.6B" and meta["license"] == "apache-2.0"
    assert meta["language"] == ["en", "fr"] and meta["datasets"] == ["rajpurkar/squad"]
    assert "model-index" not in meta and "the repo is private" in text


def test_recipe_validates_the_hub_section_before_any_work(tmp_path, corpus_file, capsys):
    out = tmp_path / "run"
    args = pretrain_args(out, corpus_file, tmp_path / "cache", "--hub.push", "true")
    from conftest import check_error

    check_error(main(args), out, capsys, "hub.repo_id")
    check_error(main([*args, "--hub.repo_id", "nons"]), out, capsys, "hub.repo_id 'nons'")


@pytest.mark.slow
def test_pretrain_recipe_with_hub_push_publishes_the_run(hub, tmp_path, corpus_file, capsys):
    out = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"hub": {"push": True, "repo_id": "alice/pre"}}))
    args = pretrain_args(out, corpus_file, tmp_path / "cache", "--train.max_steps", "4")
    assert main([*args, "--recipe", str(recipe)]) == 0
    assert {"model.safetensors", "config.json", "tokenizer.json", "loss.png"} <= set(hub.files)
    assert "metrics.jsonl" not in hub.files
    assert hub.files["model.safetensors"] == (out / "model.safetensors").read_bytes()
    meta = ModelCard(hub.files["README.md"].decode()).data.to_dict()
    ppl = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ppl = [r["val_ppl"] for r in ppl if "val_ppl" in r][-1]
    result = meta["model-index"][0]["results"][0]
    assert result["metrics"][0]["type"] == "perplexity"
    assert result["metrics"][0]["value"] == pytest.approx(ppl)
    assert result["dataset"]["split"] == "validation"
    assert "llmkit pretrain --recipe llmkit_config.yaml" in hub.files["README.md"].decode()
    assert TOKEN not in capsys.readouterr().out


@pytest.mark.slow
def test_lora_finetune_recipe_pushes_the_adapter_with_its_test_scores(hub, tmp_path, base_dir):
    out = tmp_path / "lora"
    qa = tmp_path / "qa"  # a few records of the embedded QA set
    qa.mkdir()
    source = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa"
    for split, n in (("train", 16), ("validation", 4), ("test", 4)):
        lines = (source / f"{split}.jsonl").read_text().splitlines(keepends=True)[:n]
        (qa / f"{split}.jsonl").write_text("".join(lines))
    args = finetune_args(out, base_dir, qa, "--peft", "lora", "--eval.before_training", "false")
    assert main([*args, "--hub.push", "true", "--hub.repo_id", "alice/qa-lora"]) == 0
    assert {"adapter_model.safetensors", "adapter_config.json", "eval_results.json"} <= set(
        hub.files
    )
    for rel in set(hub.files) - {"README.md"}:
        assert hub.files[rel] == (out / rel).read_bytes(), rel
    assert not {"predictions.jsonl", "metrics.jsonl", "finetune_results.json"} & set(hub.files)
    card = ModelCard(hub.files["README.md"].decode())
    meta = card.data.to_dict()
    assert meta["library_name"] == "peft" and meta["license"] == "mit"
    report = json.loads((out / "eval_results.json").read_text())
    assert (
        model_index_to_eval_results(meta["model-index"])[1]
        == model_index_to_eval_results(report["model_index"])[1]
    )
    assert {r["metric"] for r in report["results"]} == {"exact_match", "f1"}
    assert "llmkit finetune --recipe llmkit_config.yaml" in card.text


@pytest.mark.slow
def test_the_cli_process_prints_no_token(tmp_path, run_dir):
    """As a user runs it: HF_ENDPOINT and HF_TOKEN in the environment of a new process."""
    server = FakeHub(token=TOKEN)
    try:
        env = os.environ | {
            "HF_ENDPOINT": server.url,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(tmp_path / "hf-home"),
        }
        cmd = [sys.executable, "-m", "llmkit", "push", str(run_dir), "--repo-id", "bob/tiny"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    assert set(server.files) == SENT
    assert TOKEN not in proc.stdout + proc.stderr
    assert not (tmp_path / "hf-home").exists() or all(
        TOKEN.encode() not in p.read_bytes()
        for p in (tmp_path / "hf-home").rglob("*")
        if p.is_file()
    )


def check_refused(code: int, capsys, *expected: str) -> str:
    """One line on stderr naming what is wrong, exit code 2, and the token nowhere."""
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expected:
        assert text in lines[0], lines[0]
    assert TOKEN not in out + err
    return lines[0]
