"""Fine-tuning tasks: small registered units, one file each.

``get_task("qa")`` returns a :class:`Task`; a ``.yaml`` prompt template or a ``.py`` file
defining a Task subclass works wherever a task name does. ``llmkit tasks`` lists them.
"""

from __future__ import annotations

from typing import Any

from llmkit.errors import LlmkitError
from llmkit.tasks import classification, instruction, qa, summarization, translation  # noqa: F401
from llmkit.tasks.base import TASKS, Task, register_task
from llmkit.tasks.template import TemplateTask, load_task_file, load_template_task


def get_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """A task by registered name, ``.yaml`` template or ``.py`` file, with its options set."""
    if name.endswith((".yaml", ".yml")):
        factory = load_template_task(name)
    elif name.endswith(".py"):
        factory = load_task_file(name)
    elif name in TASKS:
        factory = TASKS.get(name)
    else:
        raise LlmkitError(
            f"unknown task {name!r}; known: {', '.join(task_names())} (or give a task .py file "
            "or a .yaml prompt template)"
        )
    return factory(options)


def task_names() -> list[str]:
    return TASKS.names()


def describe_tasks() -> str:
    """The table `llmkit tasks` prints: name, description, columns (aliases), metrics."""
    lines = []
    for name in task_names():
        task = get_task(name)
        columns = "; ".join(f"{c} ({', '.join(a)})" if a else c for c, a in task.columns.items())
        lines += [
            f"{name:<15} {task.description}",
            f"{'':<15} columns: {columns}",
            f"{'':<15} metrics: {', '.join(task.default_metrics)}",
        ]
    lines.append("Task options: `llmkit finetune --task NAME --help`.")
    return "\n".join(lines)


def print_tasks(_args: object = None) -> None:
    print(describe_tasks())


__all__ = [
    "TASKS",
    "Task",
    "TemplateTask",
    "describe_tasks",
    "get_task",
    "print_tasks",
    "register_task",
    "task_names",
]
