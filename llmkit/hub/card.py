"""The facts the Hub card needs, looked up from the run folder and the base model's card."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from llmkit import config as config_lib
from llmkit.config import CONFIG_FILE, FinetuneConfig, PretrainConfig
from llmkit.data.sources import is_hub_name
from llmkit.errors import ConfigError
from llmkit.training.logging import METRICS_FILE, read_metrics

EVAL_RESULTS = "eval_results.json"  # written by llmkit.evaluation.report (a higher layer)
COMMANDS = {"pretrain": PretrainConfig, "finetune": FinetuneConfig}


def run_config(folder: Path) -> tuple[str, Any] | tuple[None, None]:
    """(command, config) of the run that wrote the folder, from its llmkit_config.yaml."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return None, None
    values = config_lib.load_recipe(path)
    for command, cls in COMMANDS.items():
        try:
            return command, config_lib.from_dict(cls, values)
        except ConfigError:
            continue
    return None, None


def base_metadata(base: str | None) -> dict[str, Any]:
    """license and language of the base model's card (a folder's README.md or a Hub repo)."""
    if not base:
        return {}
    path = Path(base)
    try:
        if path.is_dir():
            if not (path / "README.md").is_file():
                return {}
            card = ModelCard.load(path / "README.md")
        else:
            card = ModelCard.load(base)
    # An unreadable or missing base card only means the card claims no license or language.
    except Exception:
        return {}
    return {k: getattr(card.data, k, None) for k in ("license", "language")}


def hub_datasets(cfg: Any) -> list[str]:
    """The run's data sources that are Hub dataset names (local files are not listed)."""
    if cfg is None:
        return []
    data = cfg.data
    sources = [data.dataset_name] if data.dataset_name else list(data.train_files)
    return [s for s in sources if s and is_hub_name(s)]


def own_eval_results(folder: Path, cfg: Any) -> list[EvalResult]:
    """The run's own evaluation: eval_results.json (a fine-tune's test scores) as written,
    else a pretraining run's final validation perplexity from metrics.jsonl."""
    report_path = folder / EVAL_RESULTS
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        return model_index_to_eval_results(report["model_index"])[1]
    if not (folder / METRICS_FILE).is_file() or cfg is None:
        return []
    values = [r for r in read_metrics(folder / METRICS_FILE) if "val_ppl" in r]
    if not values or not math.isfinite(values[-1]["val_ppl"]):
        return []
    sources = [cfg.data.dataset_name] if cfg.data.dataset_name else list(cfg.data.train_files)
    hub = len(sources) == 1 and is_hub_name(sources[0])
    return [
        EvalResult(
            task_type="text-generation",
            task_name="language modeling",
            dataset_type=sources[0] if hub else Path(sources[0]).name if sources else "unknown",
            dataset_name=", ".join(s if is_hub_name(s) else Path(s).name for s in sources),
            dataset_split="validation",
            metric_type="perplexity",
            metric_name="Perplexity",
            metric_value=values[-1]["val_ppl"],
        )
    ]


def reproduce_command(repo_id: str, command: str | None, revision: str) -> str:
    """Shell lines that fetch the run's resolved config from the repo and run it again."""
    if command is None:
        return ""
    rev = f" --revision {revision}" if revision != "main" else ""
    return (
        f"hf download {repo_id} {CONFIG_FILE}{rev} --local-dir .\n"
        "# the data paths in it are the original run's: edit them if your copy lives elsewhere\n"
        f"llmkit {command} --recipe {CONFIG_FILE} --hub.push false"
    )
