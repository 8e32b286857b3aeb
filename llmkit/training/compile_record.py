"""What compiling a model cost on this machine before, so the compile rule can count a warm
cache.

Most of a CPU compile is Inductor generating and building C++ kernels, and Inductor keeps what
it built on disk (``$TORCHINDUCTOR_CACHE_DIR``, by default ``/tmp/torchinductor_$USER``).
Measured on a 2-core Xeon (tiny preset, fp32, ``bench/train_step.py`` in fresh processes): the
first compile took 35 s; the same model and batch again 5.6 s. Inductor cannot say ahead of
a run whether its cache holds this model (its keys are hashes of the traced graph), so each
compiled run records its measured compile time here, under a key for what shapes the graph:
the module tree (layers, widths, LoRA adapters), the batch shape, precision, loss, machine
and torch. The record lives beside the precision probe in ``~/.cache/llmkit`` and counts only
while the Inductor cache it was measured against still exists.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from llmkit.config import TrainConfig
from llmkit.training.machine import machine_key, read_measurements, write_measurements

RECORD_FILE = "compile-record.json"
#: measured compile times kept per key (the newest last)
KEEP = 5


def compile_key(model: torch.nn.Module, train: TrainConfig, sequence_length: int) -> str:
    """What decides whether Inductor's cache holds this run's graph."""
    parts = {
        "modules": str(model),
        "dtypes": sorted({str(p.dtype) for p in model.parameters()}),
        "batch": [train.per_device_train_batch_size, sequence_length],
        "precision": train.mixed_precision,
        "chunked_loss": train.chunked_loss,
        "machine": machine_key(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def inductor_cache_dir() -> str:
    """Where Inductor keeps built kernels: ``$TORCHINDUCTOR_CACHE_DIR``, else its default.
    (Inductor's own ``cache_dir()`` would create the folder, which must stay a sign that
    something was compiled.)"""
    if path := os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return os.path.abspath(path)
    try:  # private, but the one place the default is decided
        from torch._inductor.runtime.runtime_utils import default_cache_dir
    except ImportError:
        return os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return default_cache_dir()


def compile_history(key: str) -> list[float]:
    """Compile seconds measured for ``key`` against the current Inductor cache, oldest first;
    empty when that cache has been removed since (the next compile is cold again)."""
    entry = read_measurements(RECORD_FILE).get(key)
    if not entry or entry.get("inductor_cache") != inductor_cache_dir():
        return []
    if not Path(entry["inductor_cache"]).is_dir():
        return []
    return list(entry.get("seconds", []))


def record_compile(key: str, seconds: float) -> None:
    """Add one measured compile time for ``key``."""
    history = [*compile_history(key), seconds][-KEEP:]
    records = read_measurements(RECORD_FILE)
    records[key] = {"inductor_cache": inductor_cache_dir(), "seconds": history}
    write_measurements(RECORD_FILE, records)
