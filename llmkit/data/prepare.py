"""Raw text -> tokenizer -> packed, memory-mapped blocks, cached under a fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from llmkit.config import DataConfig, TokenizerConfig
from llmkit.data import pack
from llmkit.data.sources import load_text_splits, sources_fingerprint
from llmkit.data.tokenizer import load_tokenizer, tokenizer_fingerprint, train_tokenizer
from llmkit.errors import DataError


@dataclass
class PreparedData:
    tokenizer: PreTrainedTokenizerBase
    splits: dict[str, pack.PackedSplit]
    manifest: dict
    folder: Path
    cached: bool


def cache_key(data: DataConfig, tok: TokenizerConfig, data_fingerprint: str) -> str:
    spec = {
        "data": data_fingerprint,
        "tokenizer": tok.name_or_path or f"bpe-{tok.vocab_size}",
        "block_size": data.block_size,
        "format": 1,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def prepare_data(
    data: DataConfig,
    tok: TokenizerConfig,
    *,
    trust_remote_code: bool = False,
    show_progress: bool = True,
) -> PreparedData:
    fingerprint = sources_fingerprint(data)
    folder = Path(data.cache_dir) / f"packed-{cache_key(data, tok, fingerprint)}"
    if pack.is_complete(folder):
        tokenizer = load_tokenizer(str(folder / "tokenizer"))
        manifest = json.loads((folder / pack.MANIFEST).read_text())
        return PreparedData(tokenizer, pack.read_packed(folder), manifest, folder, cached=True)

    texts = load_text_splits(data)
    if tok.name_or_path:
        tokenizer = load_tokenizer(tok.name_or_path, trust_remote_code)
    else:
        tokenizer = train_tokenizer(texts.train, tok.vocab_size)
    blocks, counts = {}, {}
    for name, docs in (("train", texts.train), ("validation", texts.validation)):
        tokens = pack.tokenize_documents(
            tokenizer, docs, desc=f"tokenize {name}", show_progress=show_progress
        )
        blocks[name] = pack.pack_blocks(tokens, data.block_size)
        counts[name] = {
            "documents": len(docs),
            "tokens": int(len(tokens)),
            "blocks": int(blocks[name].shape[0]),
            "dropped_tail_tokens": int(len(tokens) - blocks[name].size),
        }
        if blocks[name].shape[0] == 0:
            raise DataError(
                f"the {name} split has {len(tokens)} tokens, fewer than one block of "
                f"{data.block_size}; add data or lower data.block_size"
            )
    manifest = {
        "block_size": data.block_size,
        "tokenizer": tok.name_or_path or f"trained byte-level BPE, vocab {tok.vocab_size}",
        "tokenizer_hash": tokenizer_fingerprint(tokenizer),
        "data_fingerprint": fingerprint,
        "counts": counts,
    }
    splits = pack.write_packed(folder, blocks, manifest, tokenizer)
    manifest = json.loads((folder / pack.MANIFEST).read_text())
    return PreparedData(tokenizer, splits, manifest, folder, cached=False)
