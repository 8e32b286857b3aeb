"""Text classification as generation: the target is the label word."""

from __future__ import annotations

from dataclasses import dataclass

from llmkit.config.schema import option
from llmkit.errors import DataError
from llmkit.tasks.base import Task, register_task, text


@dataclass
class ClassificationOptions:
    labels: list[str] = option(
        [], "the label set (integer labels index into it); empty: the labels of the training data"
    )


@register_task("classification")
class ClassificationTask(Task):
    description = "classification: a text (or a text pair) and its label word"
    columns = {
        "text": ("sentence", "sentence1", "premise", "question1", "content", "review"),
        "label": ("labels", "category", "class"),
    }
    optional_columns = {"text_pair": ("sentence2", "hypothesis", "question2"), "id": ()}
    context_column = "text"
    default_metrics = ("accuracy", "macro_f1")
    generation = {"max_new_tokens": 8, "stop_strings": ["\n"]}
    Options = ClassificationOptions

    def check(self, record: dict, where: str) -> dict:
        text(record, "text", where)
        if "text_pair" in record:
            text(record, "text_pair", where)
        record["label"] = self.label_word(record["label"], where)
        return record

    def label_word(self, label: object, where: str) -> str:
        labels = self.options.labels
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise DataError(f"{where}: label must be a word or an integer, got {label!r:.60}")
        word = str(label).strip()
        if not word:
            raise DataError(f"{where}: the label is empty; give every record a label")
        if not labels or word in labels:
            return word
        if isinstance(label, int) and 0 <= label < len(labels):
            return labels[label]
        raise DataError(
            f"{where}: label {word!r} is not in the label set ({', '.join(labels)}); fix the "
            "record or set task.options.labels"
        )

    def learn_from(self, train_records: list[dict]) -> None:
        if not self.options.labels:
            self.options.labels = sorted({r["label"] for r in train_records})

    def prompt(self, record: dict) -> str:
        if "text_pair" in record:
            return f"Text 1: {record['text']}\nText 2: {record['text_pair']}\nLabel:"
        return f"Text: {record['text']}\nLabel:"

    def target(self, record: dict) -> str:
        return " " + record["label"]

    def postprocess(self, prediction: str) -> str:
        lines = prediction.strip().splitlines()
        return lines[0].strip() if lines else ""
