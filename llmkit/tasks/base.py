"""A task turns a record into the prompt a model continues and the target it should write.

A task declares the columns it reads (with the aliases other datasets use), its prompt and
target, the gold references and metrics it is scored with, and its generation settings.
Tokenization and loss masking are not here: they live once, in :mod:`llmkit.tasks.encode`,
for every task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from llmkit import config as config_lib
from llmkit.errors import DataError
from llmkit.registry import Registry

#: task name -> factory ``(options: dict | None) -> Task``
TASKS: Registry[Callable[..., Task]] = Registry("task")
MISSING = object()


@dataclass
class NoOptions:
    """Options of a task that has none."""


class Task:
    """Base class: subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: canonical column -> accepted aliases (a dotted alias reads a nested field)
    columns: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: columns read when present
    optional_columns: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: the column shortened when an example is longer than the model allows
    context_column: ClassVar[str | None] = None
    default_metrics: ClassVar[tuple[str, ...]] = ()
    generation: ClassVar[dict[str, Any]] = {"max_new_tokens": 32, "stop_strings": ["\n"]}
    prompt_template: ClassVar[str] = ""
    target_template: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: dict[str, Any] | None = None):
        self.options = config_lib.from_dict(self.Options, options or {}, prefix="task.options.")

    # --- data -----------------------------------------------------------------------------

    def normalize(self, record: dict, where: str) -> dict:
        """Canonical column names (aliases resolved), then the task's own checks."""
        if not isinstance(record, dict):
            raise DataError(
                f"{where}: expected a record with named columns, got {type(record).__name__}"
            )
        out = dict(record)
        for column, aliases in self.columns.items():
            value = lookup(record, column, aliases)
            if value is MISSING:
                raise DataError(
                    f"{where}: no column {column!r} for task {self.name} (accepted aliases: "
                    f"{', '.join(aliases) or 'none'}; the record has "
                    f"{', '.join(map(str, record)) or 'no columns'}); rename the column"
                )
            out[column] = value
        for column, aliases in self.optional_columns.items():
            value = lookup(record, column, aliases)
            if value is not MISSING:
                out[column] = value
        return self.check(out, where)

    def check(self, record: dict, where: str) -> dict:
        """Task-specific validation and conversion of a record with canonical columns."""
        for column in self.columns:
            text(record, column, where)
        return record

    def learn_from(self, train_records: list[dict]) -> None:
        """Settle what the training data decides (e.g. a label set); most tasks need nothing."""

    def setup(self, tokenizer: Any) -> None:
        """Adapt to the tokenizer (e.g. set a chat template); most tasks need nothing."""

    # --- text -----------------------------------------------------------------------------

    def prompt(self, record: dict) -> str:
        """The text the model continues."""
        return self.prompt_template.format_map(record)

    def target(self, record: dict) -> str:
        """What the model learns to write after the prompt (EOS is added by the encoder)."""
        return self.target_template.format_map(record)

    def references(self, record: dict) -> list[str]:
        """Gold strings the prediction is scored against."""
        return [self.target(record).strip()]

    def postprocess(self, prediction: str) -> str:
        """The generated text as the metrics should see it."""
        return prediction.strip()

    def __repr__(self) -> str:
        return f"<task {self.name}>"


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: ``@register_task("qa")`` makes ``--task qa`` find the class."""

    def add(cls: type[Task]) -> type[Task]:
        cls.name = name
        TASKS.add(name, cls)
        return cls

    return add


def lookup(record: dict, column: str, aliases: tuple[str, ...] = ()) -> Any:
    """The first of ``column`` and its aliases present (and not None) in the record."""
    for name in (column, *aliases):
        node: Any = record
        for part in name.split("."):
            if not isinstance(node, dict) or part not in node:
                node = MISSING
                break
            node = node[part]
        if node is not MISSING and node is not None:
            return node
    return MISSING


def text(record: dict, column: str, where: str) -> str:
    """A column that must hold non-empty text."""
    value = record[column]
    if not isinstance(value, str):
        raise DataError(
            f"{where}: column {column!r} must be text, got {type(value).__name__} {value!r:.60}"
        )
    if not value.strip():
        raise DataError(f"{where}: column {column!r} is empty; fill it or drop the record")
    return value
