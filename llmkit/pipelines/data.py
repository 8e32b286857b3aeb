"""`llmkit data prepare`: the steps a user would describe, in order."""

from __future__ import annotations

from llmkit import config as config_lib
from llmkit.config.data import DataPrepareConfig
from llmkit.data.prepare import PreparedData, prepare_to
from llmkit.data.report import format_report
from llmkit.outputs import check_output_dir


def run(cfg: DataPrepareConfig) -> PreparedData:
    cfg.validate()
    out = check_output_dir(cfg.output_dir, cfg.overwrite, resuming=False)
    prepared = prepare_to(
        out,
        cfg.data,
        cfg.tokenizer,
        trust_remote_code=cfg.trust_remote_code,
        show_progress=cfg.show_progress,
        before_commit=lambda folder: config_lib.save(cfg, folder),
    )
    print(format_report(prepared.report))
    print(f"\nsaved to: {out} (report.json, manifest.json, tokenizer/, <split>.bin)")
    return prepared
