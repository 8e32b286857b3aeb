"""Model card text shared by every output folder (README.md with Hub metadata)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import EvalResult, ModelCard, ModelCardData

if TYPE_CHECKING:
    from llmkit.config import TrainConfig


@dataclass
class CardInfo:
    title: str
    summary: str
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    method: str = ""
    task: str | None = None
    parameters: int | None = None
    architecture: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    results: dict[str, float] = field(default_factory=dict)
    eval_results: list[EvalResult] = field(default_factory=list)
    command: str = ""


def training_facts(
    train: TrainConfig, tokens_seen: int, length: dict[str, int], precision: str | None = None
) -> dict:
    """The card's training table for a run of the one training loop; ``length`` names the
    sequence length the pipeline used, ``precision`` says how the precision was chosen."""
    return {
        "steps": train.max_steps,
        "tokens seen": tokens_seen,
        **length,
        "batch size per device": train.per_device_train_batch_size,
        "gradient accumulation": train.gradient_accumulation_steps,
        "learning rate": train.learning_rate,
        "schedule": f"{train.lr_scheduler_type}, warmup {train.warmup_ratio:.0%}",
        "precision": precision or train.mixed_precision,
    }


def _table(rows: dict) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [
        f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows.items()
    ]
    return "\n".join(lines)


def write_card(folder: Path, info: CardInfo) -> Path:
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="text-generation",
        base_model=info.base_model,
        datasets=[d for d in info.datasets if "/" in d and not Path(d).exists()] or None,
        tags=["llmkit", "causal-lm"] + ([info.task] if info.task else []),
        model_name=info.title,
        eval_results=info.eval_results or None,
    )
    sections = [
        f"# {info.title}",
        info.summary,
        "## How to use",
        "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        'model = AutoModelForCausalLM.from_pretrained("PATH_OR_REPO")\n'
        'tokenizer = AutoTokenizer.from_pretrained("PATH_OR_REPO")\n```',
        "## Training",
        f"- Method: {info.method}" if info.method else "",
        f"- Base model: {info.base_model}" if info.base_model else "- Trained from scratch",
        f"- Task: {info.task}" if info.task else "",
        f"- Data: {', '.join(info.datasets)}" if info.datasets else "",
        f"- Parameters: {info.parameters:,}" if info.parameters else "",
        f"- Command: `{info.command}`" if info.command else "",
        "The resolved configuration is in `llmkit_config.yaml`; the loss curve in `loss.png`.",
    ]
    if info.architecture:
        sections += ["### Architecture", _table(info.architecture)]
    if info.training:
        sections += ["### Hyperparameters", _table(info.training)]
    if info.results:
        sections += ["## Results", _table(info.results)]
    body = "\n\n".join(s for s in sections if s)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")
    path = folder / "README.md"
    card.save(path)
    return path
