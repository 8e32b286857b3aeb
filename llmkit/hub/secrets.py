"""Refuse to publish a file that holds something that looks like an access token.

A token pasted into a recipe, a notebook copied into the run folder or a config written with
``os.environ`` in it are the usual leaks. Every byte of every file to be sent is scanned
(weights too: a safetensors header carries free-form metadata); the match itself is never
shown, only the file and the kind of secret.
"""

from __future__ import annotations

import re
from pathlib import Path

from llmkit.errors import LlmkitError

#: (kind, pattern) of secrets with a recognisable shape
PATTERNS = (
    ("a Hugging Face token", rb"hf_[A-Za-z0-9]{30,}"),
    ("an OpenAI/Anthropic-style API key", rb"sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"),
    ("a GitHub token", rb"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("an AWS access key id", rb"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    ("a Google API key", rb"AIza[0-9A-Za-z_-]{35}"),
    ("a Slack token", rb"xox[abprs]-[A-Za-z0-9-]{10,}"),
    ("a private key", rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
)
_SCAN = re.compile(b"|".join(b"(?<![A-Za-z0-9_-])(" + p + b")" for _, p in PATTERNS))
CHUNK = 8 << 20
OVERLAP = 256  # longer than any pattern's match, so a secret across chunks is still found


def find_secret(path: Path, known: tuple[bytes, ...] = (), chunk_size: int = CHUNK) -> str | None:
    """The kind of the first secret in the file, or None. ``known`` are exact values (the
    token in use) looked for as well, whatever their shape."""
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_size):
            data = tail + chunk
            if match := _SCAN.search(data):
                return PATTERNS[match.lastindex - 1][0]
            if any(k and k in data for k in known):
                return "the Hub token in use"
            tail = data[-OVERLAP:]
    return None


def check_no_secrets(folder: Path, files: list[str], token: str | None = None) -> None:
    known = (token.encode(),) if token else ()
    for rel in files:
        kind = find_secret(folder / rel, known)
        if kind:
            raise LlmkitError(
                f"{folder / rel} holds what looks like {kind}; nothing was sent. Remove the "
                "secret from the file (and revoke it if it was ever shared), then push again"
            )
