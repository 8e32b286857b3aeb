"""Model card text shared by every output folder (README.md with Hub metadata)."""

from __future__ import annotations

import re
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
        usage_snippet(PLACEHOLDER),
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


PLACEHOLDER = "PATH_OR_REPO"
_USAGE = re.compile(r"## How to use\n\n```python\n.*?```", re.DOTALL)


def usage_snippet(repo: str, adapter: bool = False, private: bool = False) -> str:
    """Python that loads the model (or base model plus adapter) from ``repo`` and generates."""
    login = (
        "# the repo is private: run `hf auth login` (or set HF_TOKEN) first\n" if private else ""
    )
    if adapter:
        load = (
            "from peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n\n"
            f"{login}"
            f'model = AutoPeftModelForCausalLM.from_pretrained("{repo}")  # base model + adapter\n'
        )
    else:
        load = (
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f"{login}"
            f'model = AutoModelForCausalLM.from_pretrained("{repo}")\n'
        )
    return (
        f"```python\n{load}"
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}")\n'
        'inputs = tokenizer("The", return_tensors="pt")\n'
        "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=40)[0]))\n```"
    )


@dataclass
class HubCardInfo:
    """What the card on the Hub says beyond the local one; every field is looked up, none is
    a default: no license or language is claimed that the base model's card does not state."""

    repo_id: str
    title: str
    adapter: bool = False
    private: bool = True
    base_model: str | None = None  # a Hub name (a local base folder is named only in the text)
    license: str | None = None
    language: str | list[str] | None = None
    datasets: list[str] = field(default_factory=list)  # Hub dataset names
    eval_results: list[EvalResult] = field(default_factory=list)
    reproduce: str = ""  # shell commands that repeat the run


def render_hub_card(local_card: str | None, info: HubCardInfo) -> str:
    """The README.md pushed to ``info.repo_id``: the run's own card (``local_card``, as
    :func:`write_card` wrote it) with Hub metadata, usage and reproduction for that repo.
    Nothing is written: the local folder keeps its card."""
    if local_card:
        card = ModelCard(local_card)
    else:
        card = ModelCard(
            f"---\n---\n\n# {info.title}\n\nA causal language model made with llmkit.\n"
        )
    data: ModelCardData = card.data
    data.library_name = "peft" if info.adapter else "transformers"
    data.pipeline_tag = "text-generation"
    data.base_model = info.base_model
    data.license = info.license or getattr(data, "license", None)
    data.language = info.language or getattr(data, "language", None)
    data.datasets = info.datasets or None
    tags = list(data.tags or ["llmkit", "causal-lm"])
    tags += [t for t in (["lora", "peft"] if info.adapter else []) if t not in tags]
    data.tags = tags
    data.model_name = info.repo_id.split("/")[1]
    data.eval_results = info.eval_results or None
    body = card.text
    usage = "## How to use\n\n" + usage_snippet(info.repo_id, info.adapter, info.private)
    if _USAGE.search(body):
        body = _USAGE.sub(lambda _: usage, body, count=1)
    else:
        body = body.rstrip() + "\n\n" + usage + "\n"
    if info.reproduce:
        body = body.rstrip() + f"\n\n## Reproduce\n\n```bash\n{info.reproduce}\n```\n"
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))
