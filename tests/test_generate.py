"""llmkit generate: streaming, batched JSONL, speculative decoding (draft and prompt lookup)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import check_error, make_tiny_model, train_briefly
from torch.profiler import ProfilerActivity, profile

from llmkit.cli import main
from llmkit.data.tokenizer import train_tokenizer
from llmkit.generation.batched import generate_records, generate_texts
from llmkit.generation.packed_verify import pack_for_verification, unpack
from llmkit.generation.speculative import acceptance, count_forwards, draft_kwargs

PROMPTS = [
    "ROMEO: I will not be, ROMEO: I will",
    "First Citizen: Before we proceed any further, hear me speak.",
    "JULIET: O Romeo, Romeo!",
]
NEW = 24


def _save(model, tok, path):
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def _ids(tok, model):
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        setattr(model.config, name, getattr(tok, name))
    return model


@pytest.fixture(scope="module")
def pair(tiny_tokenizer, shakespeare_text):
    """A briefly trained target and a weaker draft (another seed, fewer steps), fp32."""
    target = train_briefly(
        _ids(tiny_tokenizer, make_tiny_model(len(tiny_tokenizer))),
        tiny_tokenizer,
        shakespeare_text,
        60,
    )
    draft = make_tiny_model(len(tiny_tokenizer), seed=1)
    draft = train_briefly(_ids(tiny_tokenizer, draft), tiny_tokenizer, shakespeare_text, 20)
    return target, draft


@pytest.fixture(scope="module")
def pair_dirs(pair, tiny_tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("spec")
    return (
        _save(pair[0], tiny_tokenizer, root / "target"),
        _save(pair[1], tiny_tokenizer, root / "draft"),
    )


def _draft(target, tok, draft, dtok=None, n=4):
    return draft_kwargs(
        target,
        tok,
        draft,
        dtok or tok,
        num_tokens=n,
        schedule="constant",
        confidence=0.0,
        where="d",
    )


def _greedy(target, tok, **kwargs):
    return generate_texts(target, tok, PROMPTS, max_new_tokens=NEW, batch_size=1, **kwargs)


def test_greedy_is_identical_with_a_draft_and_with_prompt_lookup(pair, tiny_tokenizer):
    target, draft = pair
    plain = _greedy(target, tiny_tokenizer)
    drafted = _greedy(target, tiny_tokenizer, **_draft(target, tiny_tokenizer, draft))
    lookup = _greedy(target, tiny_tokenizer, prompt_lookup_num_tokens=3)
    assert drafted == plain and lookup == plain
    assert len(set(plain)) == len(PROMPTS)  # the prompts matter: not one fixed string


def test_greedy_is_identical_when_verification_runs_packed(pair, tiny_tokenizer):
    """The target verifies drafts + 1 tokens on MKL's packed GEMM (forced on, whatever it
    measures here); plain decoding of the same target is the reference."""
    target, draft = pair
    plain = _greedy(target, tiny_tokenizer)
    linears = sum(isinstance(m, torch.nn.Linear) for m in target.modules())
    assert pack_for_verification(target, 5, min_gain=0).layers == linears
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            drafted = _greedy(target, tiny_tokenizer, **_draft(target, tiny_tokenizer, draft, n=4))
    finally:
        assert unpack(target) == linears
    packed = sum(e.count for e in prof.key_averages() if e.key == "mkl::_mkl_linear")
    assert packed >= linears * len(PROMPTS), "full rounds verified five tokens packed"
    assert drafted == plain


def test_acceptance_counts_add_up(pair, tiny_tokenizer):
    target, draft = pair
    with count_forwards(target) as target_calls, count_forwards(draft) as draft_calls:
        records = generate_records(
            target,
            tiny_tokenizer,
            PROMPTS,
            max_new_tokens=NEW,
            batch_size=1,
            draft_counter=draft_calls,
            **_draft(target, tiny_tokenizer, draft),
        )
        stats = acceptance(records)
        assert stats.target_forwards == target_calls()  # one target forward per round
        assert stats.proposed == draft_calls()
    # New tokens as generate returns them, counted independently (EOS included).
    full = []
    for p in PROMPTS:
        ids = tiny_tokenizer(p, return_tensors="pt").input_ids
        out = target.generate(
            ids, max_new_tokens=NEW, do_sample=False, pad_token_id=tiny_tokenizer.pad_token_id
        )
        full.append(out.shape[1] - ids.shape[1])
    assert stats.new_tokens == sum(full)
    assert stats.accepted + stats.target_forwards == stats.new_tokens
    assert 0 <= stats.accepted <= stats.proposed
    chunks = [c for r in records for c in r.chunks]
    proposed = [p for r in records for p in r.proposed]
    assert all(c - 1 <= p for c, p in zip(chunks, proposed))
    rounds_1 = [c for c, p in zip(chunks, proposed) if p >= 1]
    assert stats.by_position[0] == pytest.approx(sum(c > 1 for c in rounds_1) / len(rounds_1))
    # A plain run is one token per target forward.
    plain = acceptance(
        generate_records(target, tiny_tokenizer, PROMPTS, max_new_tokens=NEW, batch_size=1)
    )
    assert plain.accepted == 0 and plain.target_forwards == plain.new_tokens == sum(full)


@pytest.mark.slow
def test_a_draft_with_another_tokenizer_is_bridged(pair, tiny_tokenizer, shakespeare_text):
    target, _ = pair
    other = train_tokenizer([shakespeare_text[200_000:400_000]], vocab_size=600)
    draft = train_briefly(
        _ids(other, make_tiny_model(len(other), seed=2)), other, shakespeare_text, 20
    )
    kwargs = _draft(target, tiny_tokenizer, draft, other)
    assert kwargs["assistant_tokenizer"] is other  # universal assisted generation
    plain = generate_texts(target, tiny_tokenizer, PROMPTS[:2], max_new_tokens=12, batch_size=1)
    bridged = generate_texts(
        target, tiny_tokenizer, PROMPTS[:2], max_new_tokens=12, batch_size=1, **kwargs
    )
    assert bridged == plain


def test_single_prompt_streams_what_batches_return(
    pair, pair_dirs, tiny_tokenizer, capsys, tmp_path
):
    target, _ = pair
    expected = generate_texts(
        target, tiny_tokenizer, PROMPTS[:1], max_new_tokens=NEW, stop_strings=["\n"]
    )[0]
    assert (
        main(
            [
                "generate",
                "--model",
                str(pair_dirs[0]),
                "--prompt",
                PROMPTS[0],
                "--max_new_tokens",
                str(NEW),
                "--stop",
                "\\n",
                "--show_progress",
                "false",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out == expected + "\n"
    assert "prefill" in captured.err and "decode" in captured.err


def test_many_prompts_write_jsonl(pair, pair_dirs, tiny_tokenizer, capsys, tmp_path):
    target, _ = pair
    out = tmp_path / "gen.jsonl"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n\n")
    args = [
        "generate",
        "--model",
        str(pair_dirs[0]),
        "--prompts_file",
        str(prompts),
        "--max_new_tokens",
        str(NEW),
        "--batch_size",
        "2",
        "--output",
        str(out),
        "--show_progress",
        "false",
    ]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = generate_texts(target, tiny_tokenizer, PROMPTS, max_new_tokens=NEW, batch_size=3)
    assert [r["prompt"] for r in rows] == PROMPTS
    assert [r["completion"] for r in rows] == expected
    assert [r["prompt_tokens"] for r in rows] == [len(tiny_tokenizer(p).input_ids) for p in PROMPTS]
    assert all(0 < r["completion_tokens"] <= NEW and r["seconds"] > 0 for r in rows)
    capsys.readouterr()
    assert main(args) == 2  # never overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_jsonl_messages_go_through_the_chat_template(tiny_model, tiny_tokenizer, tmp_path, capsys):
    tok = type(tiny_tokenizer).from_pretrained  # a copy with a chat template, saved
    folder = _save(tiny_model, tiny_tokenizer, tmp_path / "chat")
    t = tok(folder)
    t.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    t.save_pretrained(folder)
    data = tmp_path / "p.jsonl"
    data.write_text(
        json.dumps({"messages": [{"role": "user", "content": "hi there"}]})
        + "\n"
        + json.dumps({"prompt": "plain text"})
        + "\n"
    )
    out = tmp_path / "o.jsonl"
    assert (
        main(
            [
                "generate",
                "--model",
                str(folder),
                "--prompts_file",
                str(data),
                "--output",
                str(out),
                "--max_new_tokens",
                "4",
                "--show_progress",
                "false",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["prompt_tokens"] == len(t("user: hi there\nassistant:").input_ids)
    assert rows[1]["prompt_tokens"] == len(t("plain text").input_ids)  # text: only with --chat


def test_speculative_run_compares_with_plain(pair_dirs, capsys):
    assert (
        main(
            [
                "generate",
                "--model",
                str(pair_dirs[0]),
                "--prompt",
                PROMPTS[0],
                "--draft-model",
                str(pair_dirs[1]),
                "--compare",
                "--max_new_tokens",
                "16",
                "--show_progress",
                "false",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "target forwards" in err and "acceptance by draft position" in err
    assert "completions identical" in err
    assert ("faster" in err) or ("SLOWER" in err)
    # packed verification was measured on this CPU, and kept or not by that measurement
    assert "verification: " in err and "6 rows through the widest layer" in err
    assert ("on MKL's packed GEMM" in err) or ("under 1.10x faster" in err)


def test_long_prompt_is_cut_with_a_warning_or_refused(tiny_model_dir, capsys, tmp_path):
    long = "word " * 400  # above the tiny model's 256 positions
    out = tmp_path / "x.jsonl"
    assert (
        main(
            [
                "generate",
                "--model",
                str(tiny_model_dir),
                "--prompt",
                long,
                "--prompt",
                "hi",
                "--max_new_tokens",
                "4",
                "--output",
                str(out),
                "--show_progress",
                "false",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "warning: 1 prompt(s) longer than 252 tokens" in err
    assert json.loads(out.read_text().splitlines()[0])["prompt_tokens"] == 252
    code = main(
        [
            "generate",
            "--model",
            str(tiny_model_dir),
            "--prompt",
            long,
            "--no-truncate",
            "--max_new_tokens",
            "4",
            "--output",
            str(tmp_path / "y.jsonl"),
            "--show_progress",
            "false",
        ]
    )
    check_error(code, tmp_path / "y.jsonl", capsys, "prompt 0 has", "--no-truncate")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model", "no/such/folder/"], "no/such/folder"),
        (["--draft-model", "MISSING"], "nodraft not found; check --draft-model"),
        (["--generation", "{not_an_option: 1}"], "generation.not_an_option"),
        (["--draft-model", "DRAFT", "--num_beams", "2"], "num_beams=2 with a draft model"),
        (
            ["--prompt-lookup", "3", "--prompt", "b", "--batch_size", "2"],
            "batch_size=2 with a draft",
        ),
        (["--compare"], "--compare needs --draft-model"),
    ],
)
def test_bad_generate_input_is_one_line(extra, expected, pair_dirs, capsys, tmp_path):
    out = tmp_path / "o.jsonl"
    args = ["generate", "--model", str(pair_dirs[0]), "--prompt", "a", "--output", str(out)]
    args += ["--show_progress", "false"]
    named = {"DRAFT": str(pair_dirs[1]), "MISSING": str(tmp_path / "nodraft")}
    args += [named.get(e, e) for e in extra]
    check_error(main(args), out, capsys, expected)


def test_a_draft_of_the_same_size_but_another_tokenizer_is_refused(
    pair_dirs, shakespeare_text, tmp_path, capsys
):
    other = train_tokenizer([shakespeare_text[300_000:500_000]], vocab_size=512)
    folder = _save(_ids(other, make_tiny_model(len(other))), other, tmp_path / "d")
    capsys.readouterr()
    out = tmp_path / "o.jsonl"
    code = main(
        [
            "generate",
            "--model",
            str(pair_dirs[0]),
            "--prompt",
            "a",
            "--draft-model",
            str(folder),
            "--output",
            str(out),
            "--show_progress",
            "false",
        ]
    )
    check_error(code, out, capsys, "tokenizer differs from the target's", "same vocabulary size")
    assert len(other) == 512
