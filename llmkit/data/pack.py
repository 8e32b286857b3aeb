"""Tokenize once, pack into fixed-length blocks, keep them memory-mapped on disk.

The training loop only reads blocks (nanoGPT's ``train.bin``): it never tokenizes. A cache
folder is keyed by a fingerprint of (data, tokenizer, block size), so a second run skips this.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

MANIFEST = "manifest.json"


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def _chunks(texts: list[str], max_chars: int) -> Iterator[list[str]]:
    """Batches of about ``max_chars`` characters: large batches keep the Rust workers busy."""
    batch, size = [], 0
    for t in texts:
        batch.append(t)
        size += len(t)
        if size >= max_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def tokenize_documents(
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    chunk_chars: int = 1 << 20,
    desc: str = "tokenize",
    show_progress: bool = True,
) -> np.ndarray:
    """All documents as one token stream with EOS after each one."""
    backend = tokenizer.backend_tokenizer
    eos = tokenizer.eos_token_id
    dtype = token_dtype(len(tokenizer))
    pieces: list[np.ndarray] = []
    bar = tqdm(total=len(texts), desc=desc, unit="doc", disable=not show_progress)
    for batch in _chunks(texts, chunk_chars):
        encodings = backend.encode_batch_fast(batch, add_special_tokens=False)
        ids = [np.asarray(e.ids + [eos], dtype=dtype) for e in encodings]
        pieces.append(np.concatenate(ids))
        bar.update(len(batch))
    bar.close()
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def pack_blocks(tokens: np.ndarray, block_size: int) -> np.ndarray:
    """Consecutive blocks of ``block_size`` tokens; the tail shorter than a block is dropped."""
    n = len(tokens) // block_size
    return tokens[: n * block_size].reshape(n, block_size)


@dataclass
class PackedSplit:
    """Blocks of one split in a memory-mapped file."""

    path: Path
    num_blocks: int
    block_size: int
    dtype: str

    def open(self) -> np.ndarray:
        return np.memmap(
            self.path, dtype=self.dtype, mode="r", shape=(self.num_blocks, self.block_size)
        )


class BlockDataset(torch.utils.data.Dataset):
    """Blocks as ``input_ids``/``labels`` (the model shifts labels itself)."""

    def __init__(self, split: PackedSplit):
        self.blocks = split.open()

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.blocks[i].astype(np.int64))
        return {"input_ids": ids, "labels": ids}


def write_packed(
    folder: Path,
    splits: dict[str, np.ndarray],
    manifest: dict,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> dict[str, PackedSplit]:
    """Write blocks, manifest and tokenizer to a temporary folder, then rename it into place.

    A crash midway leaves only a hidden temporary folder, never a cache that looks complete.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        out = {}
        for name, blocks in splits.items():
            path = tmp / f"{name}.bin"
            blocks.tofile(path)
            out[name] = {"num_blocks": int(blocks.shape[0]), "dtype": blocks.dtype.name}
        manifest = {**manifest, "splits": out}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / "tokenizer")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_packed(folder)


def read_packed(folder: Path) -> dict[str, PackedSplit]:
    manifest = json.loads((folder / MANIFEST).read_text())
    block = manifest["block_size"]
    return {
        name: PackedSplit(folder / f"{name}.bin", s["num_blocks"], block, s["dtype"])
        for name, s in manifest["splits"].items()
    }


def is_complete(folder: Path) -> bool:
    return (folder / MANIFEST).exists()
