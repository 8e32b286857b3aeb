"""Which files of a run folder go to the Hub: an allow-list, plus what the user adds.

Tools that push a whole folder publish optimizer states and checkpoints by accident; an
allow-list sends only what someone loading the model needs, and says why each other file
stayed home.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

#: file names (or patterns) of a model or adapter folder that are pushed
ALLOWED = (
    "*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "README.md",
    "llmkit_config.yaml",
    "eval_results.json",
    "loss.png",
)
#: why a file that is not pushed stays home; first match wins, the default is the last
REASONS = (
    ("checkpoints/*", "training checkpoint (optimizer and RNG state)"),
    ("tensorboard/*", "TensorBoard logs"),
    ("*events.out.tfevents*", "TensorBoard logs"),
    ("*.bin", "pickle file: only safetensors weights are pushed"),
    ("*.pt", "pickle file: only safetensors weights are pushed"),
    ("*.pth", "pickle file: only safetensors weights are pushed"),
    ("*.pkl", "pickle file: only safetensors weights are pushed"),
    ("*.ckpt", "pickle file: only safetensors weights are pushed"),
    ("*optimizer*", "optimizer state"),
    (".*", "hidden file"),
)
DEFAULT_REASON = "not on the allow-list (add it with --include PATTERN)"


@dataclass
class Selection:
    files: list[str] = field(default_factory=list)  # relative POSIX paths, sorted
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def select_files(folder: Path, include: list[str] | tuple[str, ...] = ()) -> Selection:
    """Top-level allow-listed files, and any file matching an ``include`` pattern (a glob on
    the path relative to the folder, e.g. ``predictions.jsonl`` or ``checkpoints/*``)."""
    selection = Selection()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        top = "/" not in rel
        if any(_matches(rel, pattern) for pattern in include) or (
            top and any(fnmatch(rel, pattern) for pattern in ALLOWED)
        ):
            selection.files.append(rel)
        else:
            selection.left_out.append((rel, reason(rel)))
    return selection


def reason(rel: str) -> str:
    return next((why for pattern, why in REASONS if fnmatch(rel, pattern)), DEFAULT_REASON)


def _matches(rel: str, pattern: str) -> bool:
    """A pattern names a file, a glob, or a folder (then everything below it)."""
    pattern = pattern.rstrip("/")
    return fnmatch(rel, pattern) or rel.startswith(pattern + "/")
