"""Tasks defined outside the package: a YAML prompt template, or a Python file.

A YAML task needs no code::

    name: keywords
    columns: {text: [body], keywords: [tags]}     # canonical name: [accepted aliases]
    prompt: "Text: {text}\\nKeywords:"
    target: " {keywords}"
    context_column: text                          # optional: shortened when too long
    metrics: [rouge]
    generation: {max_new_tokens: 16, stop_strings: ["\\n"]}

A Python file defines one ``Task`` subclass (``@register_task`` optional).
"""

from __future__ import annotations

import importlib.util
import inspect
import string
import sys
from pathlib import Path
from typing import Any

import yaml

from llmkit.errors import ConfigError
from llmkit.tasks.base import TASKS, Task

KEYS = {
    "name": "the task name",
    "description": "one line shown by `llmkit tasks`",
    "columns": "canonical column: [aliases]",
    "optional_columns": "columns read when present",
    "prompt": "the prompt template, e.g. 'Question: {question}\\nAnswer:'",
    "target": "the target template, e.g. ' {answer}'",
    "references": "the gold-reference template (default: the target, stripped)",
    "context_column": "the column shortened when an example is too long",
    "metrics": "metric names (see llmkit.evaluation.metrics)",
    "generation": "max_new_tokens and stop_strings",
}


class TemplateTask(Task):
    """A task whose prompt, target and references are ``str.format`` templates."""

    def __init__(self, spec: dict[str, Any], options: dict[str, Any] | None = None):
        super().__init__(options)
        self.name = spec["name"]
        self.description = spec.get("description", f"prompt template task {self.name}")
        self.columns = {k: tuple(v or ()) for k, v in spec.get("columns", {}).items()}
        self.optional_columns = {
            k: tuple(v or ()) for k, v in spec.get("optional_columns", {}).items()
        }
        self.context_column = spec.get("context_column")
        self.default_metrics = tuple(spec.get("metrics", ("rouge",)))
        self.generation = {"max_new_tokens": 32, "stop_strings": ["\n"]} | spec.get(
            "generation", {}
        )
        self.prompt_template = spec["prompt"]
        self.target_template = spec["target"]
        self.references_template = spec.get("references")

    def references(self, record: dict) -> list[str]:
        if self.references_template is None:
            return super().references(record)
        return [self.references_template.format_map(record).strip()]


def load_template_task(path: str | Path) -> type[Task] | Any:
    """A factory ``(options) -> TemplateTask`` from a YAML file, checked before any work."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task file {path} not found; give a task name or an existing file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise ConfigError(f"task file {path}: not valid YAML; fix the syntax") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"task file {path}: the top level must be a mapping of keys")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ConfigError(f"task file {path}: unknown key {unknown[0]!r}; valid: {', '.join(KEYS)}")
    for key in ("name", "prompt", "target", "columns"):
        if not spec.get(key):
            raise ConfigError(f"task file {path}: missing {key!r} ({KEYS[key]})")
    known = set(spec["columns"]) | set(spec.get("optional_columns") or {})
    for key in ("prompt", "target", "references"):
        for field in _placeholders(spec.get(key) or ""):
            if field not in known:
                raise ConfigError(
                    f"task file {path}: {key} uses {{{field}}}, which is not a column "
                    f"({', '.join(sorted(known))}); add it under columns"
                )
    if spec.get("context_column") and spec["context_column"] not in known:
        raise ConfigError(
            f"task file {path}: context_column {spec['context_column']!r} is not a column"
        )

    def factory(options: dict[str, Any] | None = None) -> TemplateTask:
        return TemplateTask(spec, options)

    return factory


def load_task_file(path: str | Path) -> type[Task]:
    """The one Task subclass a Python file defines (importing it also runs its registrations)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task file {path} not found; give a task name or an existing file")
    name = f"llmkit_user_task_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Task) and obj.__module__ == name and obj.name
    ]
    if len(found) != 1:
        raise ConfigError(
            f"task file {path}: defines {len(found)} named Task subclasses; define exactly one"
        )
    TASKS.add(found[0].name, found[0])
    return found[0]


def _placeholders(template: str) -> set[str]:
    try:
        return {
            f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f
        }
    except ValueError as e:
        raise ConfigError(f"task template {template!r:.60}: {e}") from None
