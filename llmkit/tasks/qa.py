"""Extractive question answering (SQuAD): answer a question from a context passage."""

from __future__ import annotations

from dataclasses import dataclass

from llmkit.config.schema import option
from llmkit.errors import DataError
from llmkit.tasks.base import Task, register_task, text


@dataclass
class QAOptions:
    no_answer_text: str = option("unanswerable", "target of a question with no answer (SQuAD 2.0)")
    allow_no_answer: bool = option(
        False, "accept empty answer lists as unanswerable questions (SQuAD 2.0)"
    )


@register_task("qa")
class QATask(Task):
    description = "extractive question answering (SQuAD): answer a question from a context"
    columns = {
        "context": ("passage", "paragraph"),
        "question": ("query",),
        "answers": ("answer", "answer_text"),
    }
    optional_columns = {"id": (), "title": (), "is_impossible": ()}
    context_column = "context"
    default_metrics = ("exact_match", "f1")
    generation = {"max_new_tokens": 32, "stop_strings": ["\n"]}
    prompt_template = "Context: {context}\nQuestion: {question}\nAnswer:"
    Options = QAOptions

    def check(self, record: dict, where: str) -> dict:
        text(record, "context", where)
        text(record, "question", where)
        texts, starts = answer_lists(record["answers"], where)
        if record.get("is_impossible") is True:
            texts, starts = [], []
        if not texts and not (self.options.allow_no_answer or record.get("is_impossible")):
            raise DataError(
                f"{where}: the answers list is empty; give at least one answer, or set "
                "task.options.allow_no_answer=true to train SQuAD 2.0 unanswerable questions "
                f"(target {self.options.no_answer_text!r})"
            )
        record["answers"] = {"text": texts, "answer_start": starts}
        return record

    def target(self, record: dict) -> str:
        texts = record["answers"]["text"]
        return " " + (texts[0] if texts else self.options.no_answer_text)

    def references(self, record: dict) -> list[str]:
        # An empty list marks an unanswerable question for the SQuAD 2.0 metrics.
        return list(record["answers"]["text"])

    def postprocess(self, prediction: str) -> str:
        answer = prediction.strip()
        return "" if answer.lower() == self.options.no_answer_text.lower() else answer


def answer_lists(answers: object, where: str) -> tuple[list[str], list[int]]:
    """Texts and starts from the flat (``{text: [], answer_start: []}``), nested SQuAD
    (``[{text, answer_start}]``) or plain-string layouts."""
    if isinstance(answers, str):
        answers = [answers]
    if isinstance(answers, dict):
        texts, starts = answers.get("text"), answers.get("answer_start", [])
        if isinstance(texts, str):
            texts, starts = [texts], [starts] if isinstance(starts, int) else []
    elif isinstance(answers, list):
        texts = [a.get("text") if isinstance(a, dict) else a for a in answers]
        starts = [a.get("answer_start", -1) for a in answers if isinstance(a, dict)]
    else:
        texts = None
    if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
        raise DataError(
            f"{where}: answers must be a list of non-empty strings, {{text: [...], "
            f"answer_start: [...]}} or [{{text, answer_start}}]; got {answers!r:.80}"
        )
    return texts, [int(s) for s in starts or []]
