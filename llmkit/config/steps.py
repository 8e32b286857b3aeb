"""Settings of the document-level data steps (clean, boilerplate, dedup, decontaminate, split).

They live in ``config`` so that ``DataConfig`` can hold them as sections (``--data.clean.*``,
``--data.near_dedup.threshold ...``) without the config layer importing the data layer; the
step modules in ``llmkit.data`` re-export them next to the code they configure.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmkit.config.schema import option
from llmkit.errors import ConfigError


@dataclass
class CleanConfig:
    """Which normalisations and length filters ``clean`` applies."""

    enabled: bool = option(True, "run this step; off passes documents through unchanged")
    unicode_nfc: bool = option(True, "compose Unicode (NFC) so e+U+0301 and U+00E9 are equal")
    remove_control_chars: bool = option(True, "drop control characters but newline and tab")
    remove_replacement_chars: bool = option(True, "drop U+FFFD left by undecodable bytes")
    normalise_whitespace: bool = option(True, "collapse space runs, strip line ends, cap blanks")
    max_blank_lines: int = option(1, "longest run of blank lines kept (1: paragraphs stay apart)")
    min_chars: int = option(0, "remove documents shorter than this many characters (0: off)")
    max_chars: int | None = option(None, "remove documents longer than this many characters")
    min_tokens: int = option(0, "remove documents with fewer tokens; needs a tokenizer (0: off)")
    max_tokens: int | None = option(None, "remove documents with more tokens; needs a tokenizer")

    def __post_init__(self) -> None:
        if self.max_blank_lines < 0:
            raise ConfigError(f"clean.max_blank_lines must be >= 0, got {self.max_blank_lines}")
        for name in ("chars", "tokens"):
            low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if low < 0 or (high is not None and high < low):
                raise ConfigError(
                    f"clean.min_{name}={low} / clean.max_{name}={high} are inconsistent: "
                    f"use 0 <= min_{name} <= max_{name}"
                )

    @property
    def wants_tokens(self) -> bool:
        return self.enabled and (self.min_tokens > 0 or self.max_tokens is not None)


@dataclass
class BoilerplateConfig:
    """Remove lines (menus, footers, licence notices) that repeat across many documents."""

    enabled: bool = option(False, "off by default: in dialogue, repeated lines are content")
    min_docs: int = option(50, "remove a line from every document if this many contain it")
    max_listed: int = option(20, "how many removed lines (most frequent first) to report")

    def __post_init__(self) -> None:
        if self.min_docs < 2:
            raise ConfigError(
                f"boilerplate.min_docs must be >= 2 (a line in one document is not repeated), "
                f"got {self.min_docs}"
            )


@dataclass
class ExactDedupConfig:
    """Remove documents whose normalised content (lowercase, whitespace collapsed) repeats."""

    enabled: bool = option(True, "run this step; off passes documents through unchanged")


@dataclass
class NearDedupConfig:
    """MinHash-LSH near-duplicate removal over word n-gram shingles."""

    enabled: bool = option(True, "run this step; off passes documents through unchanged")
    threshold: float = option(0.8, "estimated Jaccard similarity at which a document is a copy")
    num_perm: int = option(128, "MinHash permutations: more is more precise and slower")
    ngram: int = option(5, "shingle size in words; shorter documents are one shingle")
    seed: int = option(1, "MinHash seed; fixed so the same corpus gives the same result")
    batch_size: int = option(1024, "documents hashed together with MinHash.bulk")

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(
                f"near_dedup.threshold must be in (0, 1], got {self.threshold}: try 0.8"
            )
        for name in ("num_perm", "ngram", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"near_dedup.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class DecontaminateConfig:
    """N-gram overlap test against evaluation sets; inert until an evaluation set is given."""

    enabled: bool = option(True, "run this step; off passes documents through unchanged")
    ngram: int = option(13, "words in a shared n-gram that marks a document as contaminated")
    eval_files: list[str] = option([], "evaluation data files, folders or globs to protect")
    eval_dataset: str | None = option(None, "a Hub dataset whose eval_split is protected")
    eval_dataset_config: str | None = option(None, "the eval_dataset's configuration name")
    eval_split: str = option("test", "split of eval_dataset to protect")
    eval_columns: list[str] = option([], "text columns of the evaluation sets (empty: all)")

    def __post_init__(self) -> None:
        if self.ngram < 1:
            raise ConfigError(f"decontaminate.ngram must be >= 1, got {self.ngram}: try 13")

    @property
    def has_eval_sets(self) -> bool:
        return bool(self.eval_files or self.eval_dataset)


@dataclass
class SplitConfig:
    """Sizes of the held-out splits and what the split hash reads."""

    enabled: bool = option(True, "split at all; off puts every document in train")
    validation: float = option(0.05, "fraction of documents for validation")
    test: float = option(0.0, "fraction of documents for test")
    validation_docs: int | None = option(None, "validation size as a count; overrides the fraction")
    test_docs: int | None = option(None, "test size as a count; overrides the fraction")
    seed: int = option(0, "hash seed: another seed draws another split")
    key: str = option(
        "text", "what to hash: normalised text or document id", choices=("text", "id")
    )

    def __post_init__(self) -> None:
        if self.key not in ("text", "id"):
            raise ConfigError(f"split.key must be 'text' or 'id', got {self.key!r}")
        for name in ("validation", "test"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"split.{name} must be in [0, 1], got {getattr(self, name)}")
            count = getattr(self, f"{name}_docs")
            if count is not None and count < 0:
                raise ConfigError(f"split.{name}_docs must be >= 0, got {count}")
        if self.validation + self.test > 1.0:
            raise ConfigError(
                f"split.validation + split.test = {self.validation + self.test} > 1: lower them"
            )

    @property
    def uses_counts(self) -> bool:
        return self.validation_docs is not None or self.test_docs is not None
