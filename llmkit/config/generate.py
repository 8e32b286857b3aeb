"""The configuration of `llmkit generate`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from llmkit.config.schema import option
from llmkit.errors import ConfigError


@dataclass
class GenerateConfig:
    model: str | None = option(None, "model folder, LoRA adapter folder or Hub name")
    prompt: list[str] = option([], "a prompt (repeat --prompt for several)")
    prompts_file: str | None = option(
        None, "prompts from a file: .txt (one per line) or .jsonl (a prompt or messages field)"
    )
    prompt_field: str = option("prompt", "JSONL field holding the prompt text")
    chat: bool = option(False, "apply the tokenizer's chat template (JSONL messages always do)")
    max_new_tokens: int = option(128, "new tokens per prompt at most")
    do_sample: bool = option(False, "sample instead of greedy decoding")
    temperature: float = option(1.0, "sampling temperature")
    top_k: int = option(50, "sample from the k most likely tokens (0: all)")
    top_p: float = option(1.0, "nucleus sampling: smallest set with this probability mass")
    repetition_penalty: float = option(1.0, "> 1 discourages repeating tokens")
    num_beams: int = option(1, "beam search with this many beams (1: none)")
    seed: int = option(0, "seed of sampling")
    stop: list[str] = option(
        [], "stop string (repeatable; \\n is a newline): completions are cut before the first"
    )
    generation: dict[str, Any] = option(
        {}, "other GenerationConfig fields, e.g. {no_repeat_ngram_size: 3}"
    )
    batch_size: int = option(8, "prompts per left-padded batch")
    max_prompt_tokens: int | None = option(
        None, "keep the last N prompt tokens; None: what fits with max_new_tokens"
    )
    no_truncate: bool = option(False, "refuse prompts that do not fit instead of cutting them")
    draft_model: str | None = option(None, "draft model folder for speculative decoding")
    draft_tokens: int = option(5, "tokens the draft proposes per round (num_assistant_tokens)")
    draft_schedule: str = option(
        "constant",
        "how the draft length adapts (num_assistant_tokens_schedule)",
        choices=("constant", "heuristic", "heuristic_transient"),
    )
    draft_confidence: float = option(
        0.0, "the draft stops proposing below this top probability (0: never)"
    )
    prompt_lookup: int = option(0, "prompt-lookup decoding: draft N tokens from prompt n-grams")
    compare: bool = option(False, "also run plain decoding on the same prompts; print speedup")
    stream: bool = option(True, "a single prompt streams to the terminal token by token")
    output: str | None = option(
        None, "JSONL of the generations; None: runs/generate/<model>.jsonl for several prompts"
    )
    overwrite: bool = option(False, "replace an existing output file")
    dtype: str = option("float32", "weights' precision", choices=("float32", "bfloat16", "float16"))
    device: str = option("auto", "cpu, cuda, cuda:1, ...; auto: cuda when available")
    int8_kernel: str = option(
        "auto",
        "an int8-dynamic folder of llmkit quantize on a CPU: auto decodes on fbgemm, torchao "
        "keeps torchao's slower kernel",
        choices=("auto", "torchao"),
    )
    verify_kernel: str = option(
        "auto",
        "a float32 CPU target with a draft: auto verifies draft_tokens + 1 tokens on MKL's "
        "packed GEMM where that measures faster here, torch keeps torch's kernel",
        choices=("auto", "torch"),
    )
    trust_remote_code: bool = option(False, "allow model code from the Hub (off: safe loading)")
    show_progress: bool = option(True, "show progress bars")

    cli_aliases: ClassVar[dict[str, str]] = {
        "draft-model": "draft_model",
        "prompt-lookup": "prompt_lookup",
        "no-truncate": "no_truncate",
    }
    #: options given once per value on the command line (prompts may hold commas)
    cli_repeatable: ClassVar[tuple[str, ...]] = ("prompt", "stop")

    def validate(self) -> None:
        self.stop = [s.replace("\\n", "\n").replace("\\t", "\t") for s in self.stop]
        if not self.model:
            raise ConfigError("no model: pass --model (a model folder or Hub name)")
        if not self.prompt and not self.prompts_file:
            raise ConfigError("no prompts: pass --prompt TEXT (repeatable) or --prompts_file")
        if self.prompt and self.prompts_file:
            raise ConfigError("pass --prompt or --prompts_file, not both")
        for name in ("max_new_tokens", "batch_size", "num_beams", "draft_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.prompt_lookup < 0:
            raise ConfigError(f"prompt_lookup must be >= 0, got {self.prompt_lookup}")
        if self.draft_model and self.prompt_lookup:
            raise ConfigError("use --draft-model or --prompt-lookup, not both")
        if self.temperature <= 0:
            raise ConfigError("temperature must be > 0; use do_sample=false for greedy")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.draft_confidence < 1:
            raise ConfigError(f"draft_confidence must be in [0, 1), got {self.draft_confidence}")
        if self.compare and not (self.draft_model or self.prompt_lookup):
            raise ConfigError("--compare needs --draft-model or --prompt-lookup")

    @property
    def speculative(self) -> bool:
        return bool(self.draft_model or self.prompt_lookup)
