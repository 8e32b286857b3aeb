"""A teacher's top-K log-probs for every block of a packed split, memory-mapped beside it.

Written once (``llmkit distill --distill.cache_topk K``), then any number of students train
from it without the teacher. The folder name is a hash of the teacher's weights, the packed
data, K and the temperature, so a changed teacher or dataset never reads a stale cache. Files
follow the packed data's conventions: raw arrays (``NAME.logp.bin`` float32 and
``NAME.idx.bin`` in the token dtype, both ``(blocks, block_size - 1, K)``), a ``manifest.json``
written last, built in a hidden temporary folder renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from llmkit.data import pack

TopKFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def cache_folder(data_folder: Path, teacher_fingerprint: str, k: int, temperature: float) -> Path:
    """``teacher-<hash>`` inside the packed data folder (keyed by data, teacher, K and T)."""
    manifest = (data_folder / pack.MANIFEST).read_bytes()
    key = hashlib.sha256(
        json.dumps([teacher_fingerprint, k, temperature]).encode() + manifest
    ).hexdigest()[:16]
    return data_folder / f"teacher-{key}"


@dataclass
class TeacherCache:
    folder: Path
    k: int

    def open(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        meta = pack.read_manifest(self.folder)["splits"][split]
        shape = (meta["num_blocks"], meta["positions"], self.k)
        logp = np.memmap(self.folder / f"{split}.logp.bin", dtype=np.float32, mode="r", shape=shape)
        idx = np.memmap(
            self.folder / f"{split}.idx.bin", dtype=meta["dtype"], mode="r", shape=shape
        )
        return logp, idx


def build_teacher_cache(
    folder: Path,
    splits: dict[str, pack.PackedSplit],
    compute: TopKFn,
    *,
    k: int,
    vocab_size: int,
    batch_size: int,
    show_progress: bool = True,
) -> TeacherCache:
    """The cache at ``folder``, computed now unless complete already."""
    if pack.is_complete(folder):
        return TeacherCache(folder, k)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dtype = pack.token_dtype(vocab_size)
    meta: dict = {"k": k, "splits": {}}
    for name, split in splits.items():
        blocks = split.open()
        positions = split.block_size - 1
        shape = (len(blocks), positions, k)
        if len(blocks):
            logp_out = np.memmap(tmp / f"{name}.logp.bin", dtype=np.float32, mode="w+", shape=shape)
            idx_out = np.memmap(tmp / f"{name}.idx.bin", dtype=dtype, mode="w+", shape=shape)
            for b in tqdm(
                range(0, len(blocks), batch_size),
                desc=f"teacher top-{k} ({name})",
                unit="batch",
                disable=not show_progress,
            ):
                ids = torch.from_numpy(blocks[b : b + batch_size].astype(np.int64))
                lp, ix = compute(ids)
                logp_out[b : b + len(ids)] = lp.numpy()
                idx_out[b : b + len(ids)] = ix.numpy().astype(dtype)
            logp_out.flush()
            idx_out.flush()
            del logp_out, idx_out
        else:
            (tmp / f"{name}.logp.bin").touch()
            (tmp / f"{name}.idx.bin").touch()
        meta["splits"][name] = {
            "num_blocks": len(blocks),
            "positions": positions,
            "dtype": dtype.name,
        }
    pack.write_manifest(tmp, meta)
    tmp.rename(folder)
    return TeacherCache(folder, k)


class CachedTeacherDataset(torch.utils.data.Dataset):
    """Blocks with the teacher's cached top-K log-probs and ids (``teacher_logp``/``_idx``)."""

    def __init__(self, blocks: pack.BlockDataset, cache: TeacherCache, split: str = "train"):
        self.blocks = blocks
        self.logp, self.idx = cache.open(split)

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.blocks[i]
        item["teacher_logp"] = torch.from_numpy(np.array(self.logp[i]))
        item["teacher_idx"] = torch.from_numpy(self.idx[i].astype(np.int64))
        return item
