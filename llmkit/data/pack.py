"""Pack token streams into fixed-length blocks on disk, and read them back memory-mapped.

The training loop only reads blocks (nanoGPT's ``train.bin``): it never tokenizes.

Two packings:

- ``concat``: documents (each followed by EOS) are concatenated and cut every ``block_size``
  tokens, so a block may span documents; only the tail of the split shorter than one block is
  dropped. The block file is the token stream itself, truncated: packing copies nothing.
- ``document``: every block holds tokens of one document only. A document's last partial block
  is padded (the pad positions get no loss: their count per block is in ``NAME.lengths.bin``)
  or dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from llmkit.data.encode import Chunk, Encoder

MANIFEST = "manifest.json"


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def pack_documents(
    tokens: np.ndarray, lengths: np.ndarray, block_size: int, remainder: str, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks that never cross a document boundary, and the real tokens in each block.

    ``tokens`` is documents back to back, ``lengths`` their sizes. ``remainder`` is ``pad``
    (each document's last partial block is filled with ``pad_id``) or ``drop``.
    """
    lengths = lengths.astype(np.int64)
    per_doc = -(-lengths // block_size) if remainder == "pad" else lengths // block_size
    starts_in = np.cumsum(lengths) - lengths
    starts_out = (np.cumsum(per_doc) - per_doc) * block_size
    offset = np.arange(len(tokens), dtype=np.int64) - np.repeat(starts_in, lengths)
    keep = offset < np.repeat(per_doc * block_size, lengths)
    dest = (np.repeat(starts_out, lengths) + offset)[keep]
    out = np.full(int(per_doc.sum()) * block_size, pad_id, dtype=tokens.dtype)
    out[dest] = tokens[keep]
    valid = np.full(int(per_doc.sum()), block_size, dtype=np.int32)
    if remainder == "pad":
        last = np.cumsum(per_doc)[per_doc > 0] - 1
        tail = lengths[per_doc > 0] - (per_doc[per_doc > 0] - 1) * block_size
        valid[last] = tail
    return out.reshape(-1, block_size), valid


class SplitWriter:
    """Appends one split's tokenized documents to ``NAME.bin`` as blocks; counts everything."""

    def __init__(
        self,
        folder: Path,
        name: str,
        block_size: int,
        dtype: np.dtype,
        packing: str = "concat",
        remainder: str = "pad",
        pad_id: int = 0,
    ):
        self.path = folder / f"{name}.bin"
        self.block_size, self.dtype = block_size, np.dtype(dtype)
        self.packing, self.remainder, self.pad_id = packing, remainder, pad_id
        self.lengths_path = (
            folder / f"{name}.lengths.bin" if packing == "document" and remainder == "pad" else None
        )
        self._fh = self.path.open("wb")
        self._lengths_fh = self.lengths_path.open("wb") if self.lengths_path else None
        self.documents = self.tokens = self.blocks = self.padding = 0

    def add(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        self.documents += len(lengths)
        self.tokens += len(tokens)
        if self.packing == "concat":
            self._fh.write(tokens.astype(self.dtype, copy=False).tobytes())
            return
        blocks, valid = pack_documents(
            tokens, lengths, self.block_size, self.remainder, self.pad_id
        )
        self._fh.write(blocks.astype(self.dtype, copy=False).tobytes())
        self.blocks += len(blocks)
        self.padding += int(blocks.size - valid.sum())
        if self._lengths_fh:
            self._lengths_fh.write(valid.tobytes())

    def close(self) -> None:
        self._fh.close()
        if self._lengths_fh:
            self._lengths_fh.close()

    def finish(self) -> dict[str, int]:
        """Close the files (concat: cut the tail shorter than a block) and return the counts."""
        self.close()
        if self.packing == "concat":
            self.blocks = self.tokens // self.block_size
            with self.path.open("r+b") as fh:
                fh.truncate(self.blocks * self.block_size * self.dtype.itemsize)
        kept = self.blocks * self.block_size - self.padding
        return {
            "documents": self.documents,
            "tokens": self.tokens,
            "blocks": self.blocks,
            "dropped_tail_tokens": self.tokens - kept,
            "padding_tokens": self.padding,
        }


class ChunkPacker:
    """The tokenize-and-pack stage: spilled chunks go in, block files come out.

    Chunks are handed to an :class:`Encoder` (worker processes on large inputs) as soon as they
    are spilled, and the results are appended, in order, to each split's :class:`SplitWriter`.
    """

    def __init__(
        self,
        encoder: Encoder,
        folder: Path,
        block_size: int,
        packing: str,
        remainder: str,
        pad_id: int,
        show_progress: bool = False,
    ):
        self.encoder, self.folder = encoder, folder
        self.settings = (block_size, encoder.dtype, packing, remainder, pad_id)
        self.writers: dict[str, SplitWriter] = {}
        self.bar = tqdm(
            desc="tokenize", unit="B", unit_scale=True, delay=1, disable=not show_progress
        )

    def add(self, split: str, chunk: Chunk) -> None:
        self._write(self.encoder.submit((split, chunk.end - chunk.start), chunk))

    def finish(self, splits: list[str]) -> dict[str, dict[str, int]]:
        """Wait for every chunk; the counts of each split in ``splits`` (empty ones included)."""
        self._write(self.encoder.finish())
        self.bar.close()
        return {name: self._writer(name).finish() for name in splits}

    def close(self) -> None:
        self.encoder.close()
        self.bar.leave = False  # after an error only the error line stays
        self.bar.close()
        for w in self.writers.values():
            w.close()

    def _write(self, done: list) -> None:
        for (split, size), tokens, lengths in done:
            self._writer(split).add(tokens, lengths)
            self.bar.update(size)

    def _writer(self, split: str) -> SplitWriter:
        if split not in self.writers:
            self.writers[split] = SplitWriter(self.folder, split, *self.settings)
        return self.writers[split]


@dataclass
class PackedSplit:
    """Blocks of one split in a memory-mapped file (and, when padded, real tokens per block)."""

    path: Path
    num_blocks: int
    block_size: int
    dtype: str
    lengths_path: Path | None = None

    def open(self) -> np.ndarray:
        if self.num_blocks == 0:
            return np.zeros((0, self.block_size), dtype=self.dtype)
        return np.memmap(
            self.path, dtype=self.dtype, mode="r", shape=(self.num_blocks, self.block_size)
        )

    def lengths(self) -> np.ndarray | None:
        if self.lengths_path is None:
            return None
        return np.fromfile(self.lengths_path, dtype=np.int32)


class BlockDataset(torch.utils.data.Dataset):
    """Blocks as ``input_ids``/``labels`` (the model shifts labels itself; pads get -100)."""

    def __init__(self, split: PackedSplit):
        self.blocks = split.open()
        self.lengths = split.lengths()

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.blocks[i].astype(np.int64))
        if self.lengths is None or self.lengths[i] == len(ids):
            return {"input_ids": ids, "labels": ids}
        labels = ids.clone()
        labels[int(self.lengths[i]) :] = -100
        return {"input_ids": ids, "labels": labels}


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def read_packed(folder: Path) -> dict[str, PackedSplit]:
    manifest = read_manifest(folder)
    block = manifest["block_size"]
    return {
        name: PackedSplit(
            folder / f"{name}.bin",
            s["num_blocks"],
            block,
            s["dtype"],
            folder / f"{name}.lengths.bin" if s.get("lengths") else None,
        )
        for name, s in manifest["splits"].items()
    }


def is_complete(folder: Path) -> bool:
    return (folder / MANIFEST).exists()
