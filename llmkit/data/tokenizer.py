"""Load a tokenizer by name or path, or train a byte-level BPE one on the training text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from llmkit.errors import LlmkitError

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE, so no input byte is ever out of vocabulary."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=None
    )


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """A local folder or a Hub name; a pad token is set when the tokenizer has none."""
    path = Path(name_or_path)
    if (
        (name_or_path.startswith((".", "/")) or path.exists())
        and not (path / "tokenizer_config.json").exists()
        and not (path / "tokenizer.json").exists()
    ):
        raise LlmkitError(
            f"tokenizer path {name_or_path}: no tokenizer.json or tokenizer_config.json there; "
            "point tokenizer.name_or_path at a saved tokenizer folder or a Hub name"
        )
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LlmkitError(f"cannot load tokenizer {name_or_path!r}: {first}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tokenizer_fingerprint(tok: PreTrainedTokenizerBase) -> str:
    """Hash of the vocabulary and specials: two tokenizers with the same hash encode alike."""
    state = json.dumps(
        {"vocab": sorted(tok.get_vocab().items()), "specials": tok.special_tokens_map},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(state.encode()).hexdigest()[:16]
