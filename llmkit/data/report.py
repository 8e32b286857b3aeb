"""The preparation report: what each step removed and why, and what each split holds.

Printed as two tables and saved as ``report.json`` beside the packed data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmkit.data.documents import StepReport, format_reports, format_table

REPORT = "report.json"


def build_report(steps: dict[str, StepReport], splits: dict[str, dict], settings: dict) -> dict:
    return {
        "steps": [r.to_dict() for r in steps.values()],
        "splits": splits,
        **settings,
    }


def format_report(report: dict[str, Any]) -> str:
    steps = format_reports(StepReport.from_dict(s) for s in report["steps"])
    rows = [("split", "documents", "tokens", "blocks", "dropped", "padding", "")]
    for name, c in report["splits"].items():
        rows.append(
            (
                name,
                f"{c['documents']:,}",
                f"{c['tokens']:,}",
                f"{c['blocks']:,}",
                f"{c['dropped_tail_tokens']:,}",
                f"{c['padding_tokens']:,}",
                "",
            )
        )
    packing = f"{report.get('packing', 'concat')} packing, blocks of {report['block_size']} tokens"
    invalid = sum(next(iter(report["steps"]))["details"].get("invalid_utf8", {}).values())
    notes = [f"invalid UTF-8 sequences replaced: {invalid:,}"] if invalid else []
    return "\n".join([steps, "", f"{packing}:", format_table(rows), *notes])


def save_report(folder: Path, report: dict) -> Path:
    path = folder / REPORT
    path.write_text(json.dumps(report, indent=1))
    return path


def load_report(folder: Path) -> dict | None:
    path = folder / REPORT
    return json.loads(path.read_text()) if path.exists() else None
