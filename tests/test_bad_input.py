"""Bad input: one line naming the file or option, exit code 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import check_error, pretrain_args

from llmkit.cli import main


def run_cli(tmp_path, data, *extra):
    out, cache = tmp_path / "out", tmp_path / "cache"
    return main(pretrain_args(out, data, cache, *extra)), out


def test_missing_file(tmp_path, capsys):
    check_error(*run_cli(tmp_path, tmp_path / "nope.txt"), capsys, "nope.txt", "not found")


def test_empty_file(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    check_error(*run_cli(tmp_path, tmp_path / "empty.txt"), capsys, "empty.txt", "is empty")


def test_malformed_json_line_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": broken}\n')
    check_error(*run_cli(tmp_path, bad), capsys, "bad.jsonl line 3", "not valid JSON")


def test_missing_text_column(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"body": "hello"}\n')
    check_error(*run_cli(tmp_path, data), capsys, "d.jsonl line 1", "'text'", "data.text_column")


def test_missing_csv_column(tmp_path, capsys):
    data = tmp_path / "d.csv"
    data.write_text("body\nhello there\n")
    check_error(*run_cli(tmp_path, data), capsys, "d.csv", "no column 'text'", "columns: body")


def test_unknown_preset(tmp_path, corpus_file, capsys):
    code, out = run_cli(tmp_path, corpus_file, "--model.preset", "huge")
    check_error(code, out, capsys, "unknown model preset 'huge'", "tiny")


def test_unreadable_tokenizer_path(tmp_path, corpus_file, capsys):
    (tmp_path / "tok").mkdir()
    code, out = run_cli(tmp_path, corpus_file, "--tokenizer.name_or_path", str(tmp_path / "tok"))
    check_error(code, out, capsys, "tokenizer path", "tok")


def test_block_size_above_model_positions(tmp_path, corpus_file, capsys):
    code, out = run_cli(tmp_path, corpus_file, "--data.block_size", "4096")
    check_error(code, out, capsys, "data.block_size 4096", "512 positions")
    assert not (tmp_path / "cache").exists(), "rejected before any data work"


def test_output_dir_with_another_run_is_kept(tmp_path, corpus_file, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "llmkit_config.yaml").write_text("precious: true\n")
    code = main(pretrain_args(out, corpus_file, tmp_path / "cache"))
    assert code == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "llmkit_config.yaml").read_text() == "precious: true\n"
    assert sorted(p.name for p in out.iterdir()) == ["llmkit_config.yaml"]


@pytest.mark.parametrize(
    "argv", [["pretrain", "--train.max_steps"], ["pretrain", "--bogus", "1"], ["nothing"]]
)
def test_usage_errors_are_one_line(argv):
    proc = subprocess.run([sys.executable, "-m", "llmkit", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["evaluate", "--model", "m", "--task.options.nosuch", "1"], "llmkit evaluate"),
        (["data", "prepare", "--bogus", "1"], "llmkit data prepare"),
    ],
)
def test_an_unknown_option_points_at_its_commands_help(argv, command):
    proc = subprocess.run([sys.executable, "-m", "llmkit", *argv], capture_output=True, text=True)
    assert proc.returncode == 2
    unknown = " ".join(argv[-2:])
    assert proc.stderr == f"error: unrecognized arguments: {unknown}; see `{command} --help`\n"
