"""Config sections shared by several pipelines (data, tokenizer, model, training)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmkit.config.schema import option
from llmkit.config.steps import (
    BoilerplateConfig,
    CleanConfig,
    DecontaminateConfig,
    ExactDedupConfig,
    NearDedupConfig,
    SplitConfig,
)
from llmkit.errors import ConfigError


@dataclass
class DataConfig:
    """Where the text comes from, the document steps it goes through, and how it is packed.

    Pretraining and ``llmkit data prepare`` run the same steps: read -> clean -> boilerplate
    -> exact_dedup -> near_dedup -> decontaminate -> split -> tokenize -> pack.
    """

    train_files: list[str] = option(
        [],
        "local files, folders or globs (.txt .jsonl .json .csv .parquet), a save_to_disk "
        "folder, or a folder written by `llmkit data prepare` (used as is)",
    )
    validation_files: list[str] = option([], "held-out files; when empty a split is taken")
    dataset_name: str | None = option(None, "a Hub dataset name instead of train_files")
    dataset_config_name: str | None = option(None, "the Hub dataset's configuration name")
    text_column: str = option("text", "column holding the text in tabular files")
    validation_split: float = option(0.05, "fraction of documents held out when no validation set")
    test_split: float = option(0.0, "fraction of documents held out for a test split")
    validation_docs: int | None = option(None, "validation size as a count (overrides the split)")
    test_docs: int | None = option(None, "test size as a count (overrides test_split)")
    block_size: int = option(256, "tokens per training block (packed, EOS between documents)")
    packing: str = option(
        "concat",
        "concat: blocks may span documents; document: no block crosses a document boundary",
        choices=("concat", "document"),
    )
    remainder: str = option(
        "pad",
        "packing=document: pad each document's last partial block (no loss on pads) or drop it",
        choices=("pad", "drop"),
    )
    cache_dir: str = option(".cache/llmkit", "where tokenized, packed data is cached")
    seed: int = option(0, "seed of the deterministic validation split")
    num_proc: int | None = option(None, "tokenizer worker processes (None: all cores)")
    clean: CleanConfig = field(default_factory=CleanConfig)
    boilerplate: BoilerplateConfig = field(default_factory=BoilerplateConfig)
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    near_dedup: NearDedupConfig = field(default_factory=NearDedupConfig)
    decontaminate: DecontaminateConfig = field(default_factory=DecontaminateConfig)

    def __post_init__(self) -> None:
        for name in ("validation_split", "test_split"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.validation_split + self.test_split >= 1:
            raise ConfigError("data.validation_split + data.test_split must be < 1; lower them")
        for name in ("validation_docs", "test_docs"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ConfigError(f"data.{name} must be >= 0, got {getattr(self, name)}")
        if self.num_proc is not None and self.num_proc < 1:
            raise ConfigError(f"data.num_proc must be >= 1 or None, got {self.num_proc}")

    def split_config(self, hold_out_validation: bool = True) -> SplitConfig:
        """The split step's settings; without a hold-out, validation comes from elsewhere."""
        return SplitConfig(
            validation=self.validation_split if hold_out_validation else 0.0,
            test=self.test_split,
            validation_docs=self.validation_docs if hold_out_validation else None,
            test_docs=self.test_docs,
            seed=self.seed,
        )


@dataclass
class TokenizerConfig:
    name_or_path: str | None = option(
        None, "existing tokenizer (Hub name or folder); None trains one"
    )
    vocab_size: int = option(4096, "vocabulary size of a trained byte-level BPE tokenizer")


@dataclass
class ModelConfig:
    preset: str | None = option("tiny", "size preset (tiny, small, base) for a model from scratch")
    name_or_path: str | None = option(None, "checkpoint (Hub name or folder) to continue from")
    config_overrides: dict[str, Any] = option({}, "AutoConfig fields, e.g. {num_hidden_layers: 2}")
    trust_remote_code: bool = option(False, "allow model code from the Hub (off: safe loading)")


@dataclass
class TrainConfig:
    max_steps: int = option(1000, "optimizer steps")
    per_device_train_batch_size: int = option(16, "sequences per device per micro-batch")
    per_device_eval_batch_size: int = option(16, "sequences per device for evaluation")
    gradient_accumulation_steps: int = option(1, "micro-batches per optimizer step")
    learning_rate: float = option(1e-3, "peak learning rate")
    weight_decay: float = option(0.1, "AdamW decay (never on norms and biases)")
    adam_beta1: float = option(0.9, "AdamW beta1")
    adam_beta2: float = option(0.95, "AdamW beta2")
    adam_epsilon: float = option(1e-8, "AdamW epsilon")
    max_grad_norm: float = option(1.0, "gradient clipping norm (0 disables)")
    lr_scheduler_type: str = option(
        "cosine", "learning-rate decay after warmup", choices=("cosine", "linear", "constant")
    )
    warmup_ratio: float = option(0.05, "fraction of max_steps spent warming up")
    min_lr_ratio: float = option(0.1, "final learning rate as a fraction of the peak")
    mixed_precision: str = option(
        "auto",
        "autocast precision; auto: bf16 on GPUs that have it (else fp16), and on CPUs only "
        "where a matmul probe shows bf16 faster than fp32 on this machine",
        choices=("auto", "no", "fp16", "bf16"),
    )
    torch_compile: str = option(
        "auto",
        "compile the model with torch.compile; auto: when the run is long enough for the "
        "compile time to pay back",
        choices=("auto", "true", "false"),
    )
    chunked_loss: bool = option(
        True,
        "causal-LM cross-entropy on cache-sized row blocks, its gradient written into the "
        "logits (same value, less memory traffic); false: the model's own loss",
    )
    seed: int = option(42, "seed for initialisation and data order")
    deterministic: bool = option(
        False,
        "bit-for-bit repeatable runs (torch.use_deterministic_algorithms, process-wide): "
        "compiled CPU training otherwise sums some gradients in a varying order",
    )
    logging_steps: int = option(10, "steps between logged training metrics")
    eval_steps: int = option(100, "steps between validation passes (0: only at the end)")
    eval_max_batches: int | None = option(None, "cap on validation batches per pass")
    log_copy_score: bool | None = option(
        None,
        "log the in-context copy score (loss on the first minus the second copy of repeated "
        "random tokens) at each evaluation; None: on for pretraining, off for fine-tuning",
    )
    save_steps: int = option(0, "steps between checkpoints (0: no intermediate checkpoints)")
    save_total_limit: int = option(2, "checkpoints kept (oldest removed)")
    resume: str = option("no", "'auto' resumes from the newest checkpoint; or a checkpoint path")
    report_to: list[str] = option(["tensorboard"], "extra loggers: tensorboard or none")
    progress_bar: bool = option(True, "show a tqdm progress bar")

    def validate(self) -> None:
        """Checks every pipeline that trains needs, before any work starts."""
        require_at_least(
            1,
            self,
            "train",
            "max_steps",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
            "save_total_limit",
        )
        require_at_least(
            0,
            self,
            "train",
            "weight_decay",
            "max_grad_norm",
            "eval_steps",
            "save_steps",
            "warmup_ratio",
            "min_lr_ratio",
        )
        if self.learning_rate <= 0:
            raise ConfigError("train.learning_rate must be > 0")


@dataclass
class HubConfig:
    """Publishing the run folder when the run ends, as `llmkit push` does."""

    push: bool = option(False, "push the run folder to the Hub when the run ends (after its eval)")
    repo_id: str | None = option(None, "the Hub model repo, NAMESPACE/NAME")
    private: bool = option(True, "create the repo private (false: public)")
    revision: str = option("main", "branch to push to (created when missing)")

    def validate(self) -> None:
        """Before any training, so a typo does not cost a run."""
        if self.push and not self.repo_id:
            raise ConfigError("hub.push is true but hub.repo_id is empty; set NAMESPACE/NAME")
        if self.repo_id is not None:
            check_repo_id(self.repo_id, "hub.repo_id")
        check_revision(self.revision, "hub.revision")
        if self.push:
            from huggingface_hub import get_token

            if not get_token():
                raise ConfigError(
                    "hub.push is true but there is no Hub token; set HF_TOKEN or run "
                    "`hf auth login` (the push happens when the run ends)"
                )


#: characters git forbids in a ref name (git check-ref-format), and the sequences it forbids
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)|^[-/.]|[/.]$|^@$")
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_repo_id(repo_id: str, name: str = "--repo-id") -> None:
    """NAMESPACE/NAME with the Hub's characters (the Hub's own rules, checked before sending)."""
    parts = repo_id.split("/")
    if (
        len(parts) != 2
        or not all(_REPO_PART.match(p) for p in parts)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
        or len(parts[1]) > 96
    ):
        raise ConfigError(
            f"{name} {repo_id!r} is not a Hub repo id; use NAMESPACE/NAME (letters, digits, "
            "'-', '_', '.'; e.g. my-user/tiny-llama)"
        )


def check_revision(revision: str, name: str = "--revision") -> None:
    if not revision or _BAD_REF.search(revision):
        raise ConfigError(
            f"{name} {revision!r} is not a valid branch name (no spaces, '..', '~^:?*[\\', "
            "leading '-' or trailing '/' or '.lock'); e.g. main or dev"
        )


def require_at_least(low: int, section: object, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value < low:
            raise ConfigError(f"{prefix}.{name} must be >= {low}, got {value}")
