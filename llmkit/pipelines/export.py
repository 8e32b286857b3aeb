"""`llmkit export RUN_DIR --format gguf --dtype f16 --out FILE.gguf`: a checked GGUF file.

Load the model (a LoRA run is merged first, as `llmkit merge` does), write the GGUF to a
temporary file, load that back with transformers' GGUF reader and compare it with the
original; only a file that passes is renamed into place, with the check's numbers
(FILE.check.json) and an Ollama Modelfile (FILE.Modelfile) beside it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from llmkit.errors import LlmkitError
from llmkit.export.gguf_check import check_gguf, format_report, save_report
from llmkit.export.gguf_writer import DTYPES, check_exportable, write_gguf
from llmkit.export.modelfile import modelfile_text
from llmkit.export.source import load_source, source_config
from llmkit.models.load import max_positions

FORMATS = ("gguf",)


def run(
    run_dir: str,
    out: str,
    format: str = "gguf",
    dtype: str = "f16",
    overwrite: bool = False,
    trust_remote_code: bool = False,
) -> dict:
    target = check_output_file(out, overwrite, format)
    check_dtype(dtype)
    check_exportable(source_config(run_dir, trust_remote_code).model_type, dtype)
    source = load_source(run_dir, trust_remote_code)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}.gguf")
    try:
        write_gguf(source.model, source.tokenizer, tmp, dtype, name=source.name)
        report = check_gguf(source.model, source.tokenizer, tmp, dtype)
        report["file"], report["source"] = target.name, source.description
        print(format_report(report))
        if not report["passed"]:
            raise LlmkitError(
                f"export: the GGUF written for {run_dir} does not match the original "
                f"(max rel diff {report['max_rel_diff']:.3g}, token ids "
                f"{report['token_ids_equal']}); nothing was written"
            )
        context = max_positions(source.model.config) or 2048
        modelfile = modelfile_text(target.name, source.tokenizer, context)
        _write_text(target.with_suffix(".Modelfile"), modelfile)
        save_report(report, target.with_suffix(".check.json"))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    print(
        f"exported {source.description} as {dtype}\nsaved to: {target} "
        f"({target.stat().st_size / 2**20:.1f} MiB), check: {target.with_suffix('.check.json')}, "
        f"Ollama: ollama create NAME -f {target.with_suffix('.Modelfile')}"
    )
    return report


def check_output_file(out: str, overwrite: bool, format: str) -> Path:
    if format not in FORMATS:
        raise LlmkitError(f"export --format {format!r}: choose one of {', '.join(FORMATS)}")
    target = Path(out)
    if target.suffix != ".gguf":
        raise LlmkitError(f"export --out {out}: name the file FILE.gguf")
    if target.is_dir():
        raise LlmkitError(f"export --out {out} is a folder; give a file path FILE.gguf")
    if target.exists() and not overwrite:
        raise LlmkitError(f"export --out {out} exists; pass --overwrite to replace it")
    return target


def check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise LlmkitError(f"export --dtype {dtype!r}: choose one of {', '.join(DTYPES)}")


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def from_args(args: argparse.Namespace) -> dict:
    return run(
        args.run_dir, args.out, args.format, args.dtype, args.overwrite, args.trust_remote_code
    )
