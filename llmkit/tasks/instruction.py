"""Instruction following: chat messages or instruction/input/output records, rendered with
the tokenizer's chat template (llmkit sets a plain one when the tokenizer has none)."""

from __future__ import annotations

from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmkit.errors import DataError
from llmkit.tasks.base import MISSING, Task, lookup, register_task, text

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
ROLES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant"}


@register_task("instruction")
class InstructionTask(Task):
    description = "instruction following: chat messages, or instruction/input/output records"
    columns = {
        "messages": ("conversations", "chat"),
        "instruction": ("prompt", "question"),
        "input": ("context",),
        "output": ("response", "answer", "completion"),
    }
    default_metrics = ("rouge",)
    generation = {"max_new_tokens": 128, "stop_strings": []}

    def __init__(self, options: dict[str, Any] | None = None):
        super().__init__(options)
        self.tokenizer: Any = None

    def setup(self, tokenizer: Any) -> None:
        if getattr(tokenizer, "chat_template", None) is None:
            tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        self.tokenizer = tokenizer

    def normalize(self, record: dict, where: str) -> dict:
        """Either ``messages`` or ``instruction`` (+ optional ``input``) and ``output``."""
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a record with named columns")
        messages = lookup(record, "messages", self.columns["messages"])
        if messages is MISSING:
            instruction = lookup(record, "instruction", self.columns["instruction"])
            output = lookup(record, "output", self.columns["output"])
            if instruction is MISSING or output is MISSING:
                raise DataError(
                    f"{where}: task instruction needs a 'messages' column (aliases: "
                    "conversations, chat) or 'instruction' (aliases: prompt, question) and "
                    "'output' (aliases: response, answer, completion); the record has "
                    f"{', '.join(map(str, record)) or 'no columns'}; rename the columns"
                )
            extra = lookup(record, "input", self.columns["input"])
            user = instruction if extra is MISSING or not extra else f"{instruction}\n\n{extra}"
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        return {**record, "messages": chat_messages(messages, where)}

    def prompt(self, record: dict) -> str:
        history = record["messages"][:-1]
        if self.tokenizer is not None:
            return self.tokenizer.apply_chat_template(
                history, tokenize=False, add_generation_prompt=True
            )
        return render(DEFAULT_CHAT_TEMPLATE, history)

    def target(self, record: dict) -> str:
        return record["messages"][-1]["content"]


def chat_messages(messages: object, where: str) -> list[dict[str, str]]:
    """``[{role, content}]`` (ShareGPT's ``{from, value}`` too), ending with the assistant."""
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: messages must be a non-empty list of {{role, content}}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise DataError(f"{where}: messages[{i}] must be a {{role, content}} mapping")
        role = m.get("role", m.get("from"))
        content = m.get("content", m.get("value"))
        if not isinstance(role, str) or not isinstance(content, str):
            raise DataError(f"{where}: messages[{i}] needs a text 'role' and 'content'")
        out.append({"role": ROLES.get(role, role), "content": content})
    if out[-1]["role"] != "assistant" or len(out) < 2:
        raise DataError(
            f"{where}: the conversation must end with an assistant message after at least one "
            "user message (it is the training target)"
        )
    text(out[-1], "content", where)
    return out


def render(template: str, messages: list[dict[str, str]]) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)
