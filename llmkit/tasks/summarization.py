"""Abstractive summarization: write a short summary of a document."""

from __future__ import annotations

from llmkit.tasks.base import Task, register_task, text


@register_task("summarization")
class SummarizationTask(Task):
    description = "summarization: write a one-line summary of a document"
    columns = {
        "document": ("article", "text", "dialogue", "content"),
        "summary": ("highlights", "abstract", "headline", "target"),
    }
    optional_columns = {"id": ()}
    context_column = "document"
    default_metrics = ("rouge",)
    generation = {"max_new_tokens": 64, "stop_strings": ["\n"]}
    prompt_template = "Document: {document}\nSummary:"

    def check(self, record: dict, where: str) -> dict:
        text(record, "document", where)
        # Multi-line summaries (CNN/DailyMail highlights) become one line: generation stops
        # at a newline, so the target must not contain one.
        record["summary"] = " ".join(text(record, "summary", where).split())
        return record

    def target(self, record: dict) -> str:
        return " " + record["summary"]
