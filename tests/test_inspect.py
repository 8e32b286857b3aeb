"""`llmkit inspect attention|heads` and the copy score logged by pretraining.

The head scores are checked on a hand-built model whose attention is known exactly (the
residual stream is constant, so RoPE alone decides where each head looks), and on a model
trained briefly on repeated sequences against the same model untrained.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import check_error, finetune_args, make_tiny_model, pretrain_args
from transformers import LlamaConfig, LlamaForCausalLM

from llmkit.cli import main
from llmkit.inspect.attention import capture
from llmkit.inspect.heads import (
    attention_scores,
    copy_losses,
    copy_metric,
    head_scores,
    repeated_tokens,
)
from llmkit.training.logging import read_metrics

CHROMIUM = "/usr/bin/chromium"
TEXT = "ROMEO: But soft, what light through yonder window breaks? It is the east."


def handbuilt(tokenizer, offsets: list[list[int]], positions: int = 64) -> LlamaForCausalLM:
    """Head (l, h) attends ``offsets[l][h]`` tokens back (0: itself, 1: the previous one).

    Embeddings are all ones and every value/output/MLP weight zero, so each layer sees the
    same constant input; q and k are constant vectors that RoPE rotates, giving the score
    s^2 * sum_i cos((m - n - offset) * theta_i), which peaks at m - n = offset with a gap of
    ~0.69 s^2 / sqrt(head_dim) to any other key (48 nats here).
    """
    layers, heads, head_dim = len(offsets), len(offsets[0]), 32
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=heads * head_dim,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(cfg)
    inv_freq = 1.0 / cfg.rope_parameters["rope_theta"] ** (
        torch.arange(0, head_dim, 2).float() / head_dim
    )
    s, half, hidden = 20.0, head_dim // 2, cfg.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0 if "norm" in name or "embed" in name else 0.0)
        for layer, row in zip(model.model.layers, offsets, strict=True):
            q, k = torch.zeros(hidden), torch.zeros(hidden)
            for h, off in enumerate(row):
                q[h * head_dim : h * head_dim + half] = s
                k[h * head_dim : h * head_dim + half] = s * torch.cos(off * inv_freq)
                k[h * head_dim + half : (h + 1) * head_dim] = s * torch.sin(off * inv_freq)
            # RMSNorm of the all-ones input is all ones: W @ 1 = the wanted vector
            layer.self_attn.q_proj.weight.copy_(q[:, None].expand(-1, hidden) / hidden)
            layer.self_attn.k_proj.weight.copy_(k[:, None].expand(-1, hidden) / hidden)
    return model.eval()


OFFSETS = [[1, 0, 0, 0], [0, 0, 2, 0]]  # one previous-token head, layer 0 head 0


@pytest.fixture(scope="module")
def handbuilt_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    path = tmp_path_factory.mktemp("handbuilt")
    handbuilt(tiny_tokenizer, OFFSETS).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def changed_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """The same model with layer 1 head 1 turned into a previous-token head."""
    path = tmp_path_factory.mktemp("handbuilt-changed")
    handbuilt(tiny_tokenizer, [[1, 0, 0, 0], [0, 1, 2, 0]]).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def test_previous_token_head_scores_one_and_the_others_zero(tiny_tokenizer):
    model = handbuilt(tiny_tokenizer, OFFSETS)
    s = head_scores(model, tiny_tokenizer, length=20, batch=4)
    prev = np.array(s["previous_token"])
    assert prev[0, 0] > 0.99
    # the offset-2 head: only at position 1 (nothing 2 back) is the nearest key the previous
    # one, 1 of the 40 positions scored
    assert prev[1, 2] == pytest.approx(1 / 40, abs=1e-4)
    mask = np.ones_like(prev, dtype=bool)
    mask[0, 0] = mask[1, 2] = False
    assert prev[mask].max() < 1e-6
    # sharp heads: entropy ~0 (a uniform head over 41 tokens would be ~2.9 nats on average)
    assert max(map(max, s["entropy"])) < 0.05
    # the offset-2 head looks two back: at the second copy that is never the induction key
    assert max(map(max, s["induction"])) < 0.01
    # the model cannot predict anything (zero lm_head): no copying
    assert abs(s["copy_score"]) < 1e-5
    assert s["copy_loss_first"] == pytest.approx(np.log(len(tiny_tokenizer)), abs=1e-4)


def test_scores_index_the_right_positions():
    """Weights put exactly where each definition looks score 1 there and 0 elsewhere."""
    length, total = 5, 11  # start token + two copies
    q = torch.arange(total)
    prev = torch.zeros(1, 1, 1, total, total)
    prev[..., 0, 0] = 1
    prev[..., q[1:], q[1:] - 1] = 1
    induction = torch.zeros(1, 1, 1, total, total)
    induction[..., q, q] = 1
    j = torch.arange(length - 1)
    induction[..., 1 + length + j, :] = 0
    induction[..., 1 + length + j, 1 + j + 1] = 1
    a, b = attention_scores(prev, length), attention_scores(induction, length)
    assert a["previous_token"].item() == pytest.approx(1.0)
    assert a["induction"].item() == pytest.approx(0.0)
    assert b["induction"].item() == pytest.approx(1.0)
    assert b["previous_token"].item() == pytest.approx(0.0)
    assert a["entropy"].item() == pytest.approx(0.0, abs=1e-6)


def test_copy_losses_equal_the_models_own_loss(tiny_model, tiny_tokenizer):
    ids = repeated_tokens(tiny_tokenizer, 12, 3, seed=1)
    assert ids.shape == (3, 25) and torch.equal(ids[:, 1:13], ids[:, 13:])
    got = copy_losses(tiny_model, ids, 12)
    for key, start in (("copy_loss_first", 2), ("copy_loss_second", 14)):
        labels = torch.full_like(ids, -100)
        labels[:, start : start + 11] = ids[:, start : start + 11]  # tokens 2..L of a copy
        with torch.no_grad():
            want = tiny_model(input_ids=ids, labels=labels).loss.item()
        assert got[key] == pytest.approx(want, rel=1e-5)


def repeats_at_random_offsets(step: int, batch: int = 32, length: int = 12, vocab: int = 64):
    """Rows ``[start, noise, x, noise, x, noise]`` with a random gap per row: the second copy
    is predictable only by finding the first one by content (with one fixed period the model
    learns a positional shortcut instead, which copies without any induction head)."""
    g = torch.Generator().manual_seed(step)
    x = torch.randint(3, vocab, (batch, length), generator=g)
    noise = torch.randint(3, vocab, (batch, 4 * length), generator=g)
    rows = []
    for i in range(batch):
        p, gap = torch.randint(0, length + 1, (2,), generator=g).tolist()
        n = noise[i]
        parts = [torch.tensor([1]), n[:p], x[i], n[p : p + gap], x[i], n[p + gap :]]
        rows.append(torch.cat(parts)[: 1 + 4 * length])
    return torch.stack(rows)


@pytest.mark.slow
def test_training_on_repeated_sequences_raises_induction(tiny_tokenizer):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-layer model this small runs fastest on one thread
    try:
        model = make_tiny_model(len(tiny_tokenizer), seed=0)
        before = head_scores(model, tiny_tokenizer, length=16, batch=16, seed=123, vocab_size=64)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
        model.train()
        for step in range(200):
            ids = repeats_at_random_offsets(step)
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad()
        after = head_scores(
            model.eval(), tiny_tokenizer, length=16, batch=16, seed=123, vocab_size=64
        )
    finally:
        torch.set_num_threads(threads)
    top = max(map(max, after["induction"]))
    assert top > max(map(max, before["induction"])) + 0.05
    # untrained attention is near uniform: ~1/(position) on the induction key
    assert max(map(max, before["induction"])) < 0.07


@pytest.mark.slow
def test_pretraining_logs_the_copy_score(tmp_path, corpus_file):
    out = tmp_path / "run"
    assert (
        main(pretrain_args(out, corpus_file, tmp_path / "cache", "--train.eval_steps", "15")) == 0
    )
    evals = [r for r in read_metrics(out / "metrics.jsonl") if "val_loss" in r]
    assert [r["step"] for r in evals] == [0, 15, 30]
    assert all("copy_score" in r for r in evals)
    # the last value is the saved model's, computed again here independently of the loop
    from llmkit.inspect.attention import load_model

    m = load_model(str(out))
    assert evals[-1]["copy_score"] == pytest.approx(
        copy_metric(m.model, m.tokenizer, 64)["copy_score"], abs=1e-4
    )
    assert (out / "loss.png").stat().st_size > 0


@pytest.mark.slow
def test_finetuning_logs_the_copy_score_when_asked(tmp_path, tiny_model_dir):
    from llmkit.config.finetune import FinetuneConfig
    from llmkit.pipelines.finetune import with_copy_score

    qa = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa"
    rows = (qa / "train.jsonl").read_text().splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(rows[:24]) + "\n")
    out = tmp_path / "run"
    args = finetune_args(out, tiny_model_dir, tmp_path / "train.jsonl")
    args += ["--data.validation_split", "0.2", "--eval.before_training", "false"]
    assert main([*args, "--train.log_copy_score", "true"]) == 0
    passes = [r for r in read_metrics(out / "metrics.jsonl") if "val_loss" in r]
    assert [r["step"] for r in passes] == [0, 4]
    assert all("copy_score" in r for r in passes)
    # off by default for fine-tuning: the validator is passed to the loop unchanged
    default = FinetuneConfig()
    assert default.train.log_copy_score is None
    validator = object()
    assert with_copy_score(validator, None, default) is validator


# --- the command line --------------------------------------------------------------------------


@pytest.mark.slow  # headless Chromium starts four times
def test_attention_command_writes_maps_and_a_page_that_reacts(
    tmp_path, handbuilt_dir, changed_dir, capsys
):
    out = tmp_path / "att"
    args = ["inspect", "attention", "--model", str(handbuilt_dir), "--text", TEXT]
    args += ["--layer", "1", "--head", "1", "--compare", str(changed_dir)]
    assert main([*args, "--output_dir", str(out)]) == 0
    assert "saved to" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {
        "attention.png",
        "attention_B.png",
        "attention_diff.png",
        "attention_L1_H1.png",
        "attention.html",
        "inspect.json",
    } == names
    for name in names - {"attention.html", "inspect.json"}:
        img = matplotlib.image.imread(out / name)
        assert img.shape[0] > 200 and img[..., :3].std() > 0.05, name

    page = (out / "attention.html").read_text()
    assert "<script src" not in page and "http" not in page  # self-contained, offline
    shots = {h: screenshot(out / "attention.html", h, tmp_path) for h in ("head=0", "head=1")}
    for img in shots.values():
        assert img.shape[0] > 500 and img[..., :3].std() > 0.05  # drawn, not blank
    assert not np.array_equal(shots["head=0"], shots["head=1"])

    # the selection drives the map and the hovered token's weights, as in Python
    dom = dump_dom(out / "attention.html", "layer=1&head=2&token=7", tmp_path)
    assert dom.body["data-drawn"] == "A:1:2"
    from llmkit.inspect.attention import load_model

    m = load_model(str(handbuilt_dir))
    ids = torch.tensor([m.tokenizer(TEXT)["input_ids"]])
    att = capture(m.model, ids)[0, 1, 2].numpy()
    weights = [float(w) for w in dom.weights]
    assert weights == pytest.approx(np.where(np.arange(att.shape[1]) <= 7, att[7], 0), abs=2e-3)
    assert weights[5] == pytest.approx(1.0, abs=1e-3)  # the offset-2 head: token 7 -> token 5
    diff = dump_dom(out / "attention.html", "view=diff&layer=1&head=1&token=7", tmp_path)
    assert diff.body["data-drawn"] == "diff:1:1"
    assert float(diff.weights[6]) == pytest.approx(1.0, abs=1e-3)  # B looks back one
    assert float(diff.weights[7]) == pytest.approx(-1.0, abs=1e-3)  # A looked at itself


def test_heads_command_writes_json_table_and_heatmap(tmp_path, handbuilt_dir, capsys):
    out = tmp_path / "heads"
    assert (
        main(
            [
                "inspect",
                "heads",
                "--model",
                str(handbuilt_dir),
                "--output_dir",
                str(out),
                "--seq_len",
                "20",
                "--batch",
                "4",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "prev-token" in printed and "copy score" in printed
    scores = json.loads((out / "heads.json").read_text())
    assert scores["previous_token"][0][0] > 0.99 and scores["layers"] == 2
    assert matplotlib.image.imread(out / "heads.png")[..., :3].std() > 0.05


def test_task_example_prompt(tmp_path, tiny_model_dir, tiny_tokenizer, capsys):
    from llmkit.tasks import get_task

    qa = Path(__file__).resolve().parents[1] / "data" / "tasks" / "qa"
    out = tmp_path / "qa"
    args = ["inspect", "attention", "--model", str(tiny_model_dir), "--task", "qa"]
    assert main([*args, "--data", str(qa), "--index", "3", "--output_dir", str(out)]) == 0
    record = json.loads((qa / "test.jsonl").read_text().splitlines()[3])
    prompt = get_task("qa").prompt(get_task("qa").normalize(record, "test"))
    summary = json.loads((out / "inspect.json").read_text())
    assert summary["source"] == "qa test example 3"
    assert summary["tokens"] == len(tiny_tokenizer(prompt)["input_ids"])
    capsys.readouterr()
    bad = tmp_path / "bad"
    code = main([*args, "--data", str(qa), "--index", "999", "--output_dir", str(bad)])
    check_error(code, bad, capsys, "--index 999", "records (0-")


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--layer", "2"], ["--layer 2", "2 layers (0-1)"]),
        (["--head", "4"], ["--head 4", "4 heads (0-3)"]),
        (["--text", "word " * 200], ["longer than the model's 64 positions"]),
    ],
)
def test_bad_selection_or_text(tmp_path, handbuilt_dir, capsys, extra, expected):
    out = tmp_path / "out"
    args = ["inspect", "attention", "--model", str(handbuilt_dir), "--output_dir", str(out)]
    if "--text" not in extra:
        args += ["--text", TEXT]
    check_error(main(args + extra), out, capsys, *expected)


def test_model_folder_without_weights(tmp_path, handbuilt_dir, capsys):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    for f in handbuilt_dir.iterdir():
        if f.suffix != ".safetensors":
            (empty / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "out"
    for command in (["attention", "--text", TEXT], ["heads"]):
        code = main(["inspect", *command, "--model", str(empty), "--output_dir", str(out)])
        check_error(code, out, capsys, str(empty), "no *.safetensors")


# --- headless Chromium -----------------------------------------------------------------------


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(dir=tmp) as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def screenshot(page: Path, fragment: str, tmp: Path) -> np.ndarray:
    png = tmp / f"shot-{abs(hash(fragment))}.png"
    chromium(
        f"--screenshot={png}", "--window-size=1200,800", f"{page.as_uri()}#{fragment}", tmp=tmp
    )
    return matplotlib.image.imread(png)


class Dom(HTMLParser):
    """The body's data attributes and the token strip's drawn weights (``data-w``)."""

    def __init__(self):
        super().__init__()
        self.body: dict[str, str] = {}
        self.weights: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        if tag == "span" and "data-w" in attrs:
            self.weights.append(attrs["data-w"])


def dump_dom(page: Path, fragment: str, tmp: Path) -> Dom:
    dom = Dom()
    dom.feed(chromium("--dump-dom", f"{page.as_uri()}#{fragment}", tmp=tmp).stdout)
    return dom
