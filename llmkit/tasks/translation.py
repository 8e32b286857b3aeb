"""Translation between two languages, from WMT-style pairs or two columns."""

from __future__ import annotations

from dataclasses import dataclass

from llmkit.config.schema import option
from llmkit.errors import DataError
from llmkit.tasks.base import Task, register_task, text

LANGUAGES = {
    "ar": "Arabic",
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "hi": "Hindi",
    "it": "Italian",
    "ja": "Japanese",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "zh": "Chinese",
}


@dataclass
class TranslationOptions:
    source_lang: str = option("en", "language code of the source text (a key of `translation`)")
    target_lang: str = option("fr", "language code of the target text")


@register_task("translation")
class TranslationTask(Task):
    description = "translation: {translation: {en: ..., fr: ...}} pairs or two columns"
    optional_columns = {"id": ()}
    context_column = "source"
    default_metrics = ("bleu", "chrf")
    generation = {"max_new_tokens": 128, "stop_strings": ["\n"]}
    Options = TranslationOptions

    @property
    def columns(self) -> dict[str, tuple[str, ...]]:
        src, tgt = self.options.source_lang, self.options.target_lang
        return {
            "source": (f"translation.{src}", src, "src"),
            "target": (f"translation.{tgt}", tgt, "tgt"),
        }

    def normalize(self, record: dict, where: str) -> dict:
        pair = record.get("translation") if isinstance(record, dict) else None
        if isinstance(pair, dict):
            for lang, side in (
                (self.options.source_lang, "source"),
                (self.options.target_lang, "target"),
            ):
                if lang not in pair:
                    raise DataError(
                        f"{where}: the translation has no {lang!r} text (languages: "
                        f"{', '.join(pair)}); set task.options.{side}_lang"
                    )
        return super().normalize(record, where)

    def check(self, record: dict, where: str) -> dict:
        for column in ("source", "target"):
            record[column] = " ".join(text(record, column, where).split())
        return record

    def prompt(self, record: dict) -> str:
        src = LANGUAGES.get(self.options.source_lang, self.options.source_lang)
        tgt = LANGUAGES.get(self.options.target_lang, self.options.target_lang)
        return f"{src}: {record['source']}\n{tgt}:"

    def target(self, record: dict) -> str:
        return " " + record["target"]
