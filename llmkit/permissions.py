"""Files llmkit writes get the modes the user's umask gives ordinary files and folders.

safetensors (0.8) writes every weights file through a private temporary file and keeps its
0600 mode, and ``tempfile.mkdtemp`` makes private folders: on a shared filesystem, or for a
server that runs as another user, such a model cannot be loaded. Every place that writes
weights or stages a folder calls :func:`ordinary_modes` on what it wrote.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def ordinary_modes(path: str | Path) -> None:
    """Give ``path`` (a file, or a folder and everything under it) the modes a plain
    ``open()``/``mkdir()`` would have given it: 0666/0777 less the umask."""
    mask = current_umask()
    root = Path(path)
    for item in [root, *root.rglob("*")] if root.is_dir() else [root]:
        if item.is_symlink():
            continue
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)
