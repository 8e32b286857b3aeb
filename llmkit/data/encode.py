"""Tokenize spilled documents chunk by chunk, in parallel worker processes on large inputs.

Documents of a split are first written ("spilled") to one file, UTF-8, each followed by a NUL
byte, and cut into chunks of about a megabyte at document boundaries. A chunk is the unit of
work: a worker reads it straight from the file, encodes it with the Rust tokenizer and hands
back a flat token array (EOS after every document) plus the token count of each document.
Only chunk offsets travel to the workers and only numpy arrays travel back, so memory stays
bounded whatever the corpus size.

This module imports only numpy and ``tokenizers``, so workers start in a blink.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

SEPARATOR = b"\0"
CHUNK_BYTES = 1 << 20
PARALLEL_MIN_BYTES = 8 << 20  # below this, starting worker processes costs more than it saves


@dataclass(frozen=True)
class Chunk:
    path: Path
    start: int
    end: int


@dataclass
class DocSpill:
    """An append-only file of documents, cut into chunks at document boundaries."""

    path: Path
    chunk_bytes: int = CHUNK_BYTES
    documents: int = 0
    bytes: int = 0
    chars: int = 0
    chunks: list[Chunk] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._fh = self.path.open("wb")
        self._chunk_start = 0

    def write(self, text: str) -> Chunk | None:
        """Append one document; returns the chunk it completes (flushed, ready to read)."""
        if "\0" in text:  # the separator: NUL carries no meaning in text, so it is dropped
            text = text.replace("\0", "")
        data = text.encode("utf-8") + SEPARATOR
        self._fh.write(data)
        self.documents += 1
        self.chars += len(text)
        self.bytes += len(data)
        return self._cut() if self.bytes - self._chunk_start >= self.chunk_bytes else None

    def close(self) -> Chunk | None:
        """No more documents; returns the last, partial chunk if there is one."""
        chunk = self._cut() if self.bytes > self._chunk_start else None
        self._fh.close()
        return chunk

    def _cut(self) -> Chunk:
        self._fh.flush()
        chunk = Chunk(self.path, self._chunk_start, self.bytes)
        self.chunks.append(chunk)
        self._chunk_start = self.bytes
        return chunk

    def batches(self) -> Iterator[list[str]]:
        """The documents again, a chunk at a time (e.g. to train a tokenizer on them)."""
        for chunk in self.chunks:
            yield read_chunk(chunk)


def read_chunk(chunk: Chunk) -> list[str]:
    with chunk.path.open("rb") as fh:
        fh.seek(chunk.start)
        data = fh.read(chunk.end - chunk.start)
    return data[:-1].decode("utf-8").split("\0")


def encode_texts(
    tokenizer: Tokenizer, texts: list[str], eos_id: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all ``texts`` with EOS after each, and each document's length (with EOS)."""
    ids = [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)) + 1
    for x in ids:
        x.append(eos_id)
    flat = np.fromiter(chain.from_iterable(ids), dtype=dtype, count=int(lengths.sum()))
    return flat, lengths


def plain(tokenizer: Tokenizer | str) -> Tokenizer:
    """A private copy that never truncates or pads: a tokenizer.json may carry either setting
    (and a transformers wrapper leaves its last call's in place), which would cut documents."""
    copy = Tokenizer.from_str(tokenizer if isinstance(tokenizer, str) else tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


class Encoder:
    """Encodes chunks as they are submitted and hands results back in submission order.

    With ``num_proc == 1`` it encodes in this process (the tokenizer's own threads run in
    parallel). With more, chunks go to worker processes that each encode single-threaded, so
    the Python part of encoding runs in parallel too and reading the next chunks overlaps with
    encoding the previous ones. ``submit`` and ``finish`` return ``(key, tokens, lengths)`` of
    the chunks that are done, oldest first; at most ``4 * num_proc`` chunks are in flight.
    """

    def __init__(self, tokenizer: Tokenizer, eos_id: int, dtype: np.dtype, num_proc: int = 1):
        self.tokenizer, self.eos_id, self.dtype = plain(tokenizer), eos_id, np.dtype(dtype)
        self.num_proc = num_proc
        self._pending: deque = deque()
        self._pool = None
        if num_proc > 1:
            context = multiprocessing.get_context(_start_method())
            init = (tokenizer.to_str(), eos_id, self.dtype.str)
            # Frozen objects are never scanned by a forked worker's garbage collector, so the
            # pages it shares with this process stay shared instead of being copied one by one.
            gc.freeze()
            try:
                self._pool = context.Pool(num_proc, initializer=_init_worker, initargs=init)
            finally:
                gc.unfreeze()

    def submit(self, key: object, chunk: Chunk) -> list[tuple[object, np.ndarray, np.ndarray]]:
        if self._pool is None:
            return [
                (key, *encode_texts(self.tokenizer, read_chunk(chunk), self.eos_id, self.dtype))
            ]
        self._pending.append((key, self._pool.apply_async(_encode_chunk, (chunk,))))
        return self._collect(limit=4 * self.num_proc)

    def finish(self) -> list[tuple[object, np.ndarray, np.ndarray]]:
        done = self._collect(limit=0)
        self.close()
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def _collect(self, limit: int) -> list[tuple[object, np.ndarray, np.ndarray]]:
        done = []
        while self._pending and (len(self._pending) > limit or self._pending[0][1].ready()):
            key, result = self._pending.popleft()
            done.append((key, *result.get()))
        return done

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def encode_chunks(
    tokenizer: Tokenizer, chunks: list[Chunk], eos_id: int, dtype: np.dtype, num_proc: int = 1
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``encode_texts`` of every chunk, in order (see :class:`Encoder`)."""
    with Encoder(tokenizer, eos_id, dtype, min(num_proc, len(chunks))) as encoder:
        for chunk in chunks:
            for _, tokens, lengths in encoder.submit(None, chunk):
                yield tokens, lengths
        for _, tokens, lengths in encoder.finish():
            yield tokens, lengths


_WORKER: dict = {}


def _init_worker(tokenizer_json: str, eos_id: int, dtype: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process: processes = cores
    _WORKER.update(tokenizer=plain(tokenizer_json), eos=eos_id, dtype=np.dtype(dtype))


def _encode_chunk(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    return encode_texts(_WORKER["tokenizer"], read_chunk(chunk), _WORKER["eos"], _WORKER["dtype"])


def _start_method() -> str:
    """fork where the OS has it: a spawned worker would re-import the caller's main module
    (torch, transformers: seconds per worker). A forked worker touches no lock of the parent's
    threads: it builds its own tokenizer and keeps the tokenizer's thread pool off."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def default_num_proc() -> int:
    """The cores this process may use (cgroup/affinity aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
