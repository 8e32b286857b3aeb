"""Which machine this is, for measurements that hold only on it (the precision probe, compile
times), and where they are kept: per machine, not per project."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from llmkit.permissions import ordinary_modes


def machine_key() -> str:
    """What makes two machines multiply at different speeds: processor, threads, torch."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
        lines = info.splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if "model name" in ln), cpu)
        flags = next((ln for ln in lines if ln.startswith("flags")), "")
        extras = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f" {f}" in flags]
        cpu = " ".join([model, *extras])
    except OSError:
        pass
    return f"{cpu}; {torch.get_num_threads()} threads; torch {torch.__version__}"


def machine_cache_dir() -> Path:
    """Per machine, not per project: ``$LLMKIT_CACHE_DIR``, else ``~/.cache/llmkit``."""
    return Path(os.environ.get("LLMKIT_CACHE_DIR") or Path.home() / ".cache" / "llmkit")


def read_measurements(name: str) -> dict:
    """The JSON file ``name`` in the machine cache; empty when missing or damaged (whatever it
    held is then measured again)."""
    path = machine_cache_dir() / name
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_measurements(name: str, data: dict) -> None:
    """Replace the JSON file ``name`` in the machine cache whole (a concurrent run reads the
    old file or the new one, never half of one)."""
    path = machine_cache_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    ordinary_modes(path)
