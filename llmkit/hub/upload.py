"""One commit to a Hub model repo with ``huggingface_hub``; its failures as one line each.

``upload_folder`` sends a folder's files as they are on disk; the card pushed here is rendered
for the repo and must not be written into the local folder, so the same operations
``upload_folder`` builds (``CommitOperationAdd`` per file) go to ``create_commit`` with the
card as bytes. Large files go through Xet/LFS there, exactly as in ``upload_folder``.
"""

from __future__ import annotations

import os
from pathlib import Path

from llmkit.errors import LlmkitError


def hub_token(required: bool = True) -> str | None:
    """HF_TOKEN or the stored login (``hf auth login``); never printed, logged or written."""
    from huggingface_hub import get_token

    token = get_token()
    if not token and required:
        raise LlmkitError(
            "no Hub token: set HF_TOKEN to a token with write access or run `hf auth login`"
        )
    return token


def endpoint() -> str:
    """HF_ENDPOINT read now, not when huggingface_hub was imported."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def upload(
    folder: Path,
    files: list[str],
    card: str,
    *,
    repo_id: str,
    token: str,
    private: bool,
    revision: str = "main",
    commit_message: str | None = None,
    create_pr: bool = False,
) -> str:
    """Create the repo (private unless told otherwise; an existing one is kept as it is) and
    commit ``files`` of ``folder`` plus the rendered ``card``; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    url = endpoint()
    api = HfApi(endpoint=url, token=token)
    operations = [
        CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel))
        for rel in files
        if rel != "README.md"
    ]
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision != "main" and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload {folder.name} with llmkit",
            revision=revision,
            create_pr=create_pr,
        )
    except Exception as e:
        raise LlmkitError(describe_failure(e, repo_id, url)) from None
    return info.pr_url or info.commit_url


def describe_failure(e: Exception, repo_id: str, url: str) -> str:
    """A Hub or network failure as one line that says what to do; anything else re-raised."""
    from huggingface_hub.errors import HfHubHTTPError

    try:  # huggingface_hub 2.x ships its HTTP client as httpx2; 1.x used httpx
        from httpx2 import TransportError
    except ImportError:
        from httpx import TransportError

    namespace = repo_id.split("/")[0]
    if isinstance(e, TransportError):
        return (
            f"cannot reach the Hub at {url} ({type(e).__name__}); check your network or "
            "HF_ENDPOINT; nothing was pushed"
        )
    if not isinstance(e, HfHubHTTPError) or e.response is None:
        raise e
    status = e.response.status_code
    if status == 401:
        return (
            f"the Hub at {url} refused the token (401 unauthorized); set HF_TOKEN to a valid "
            "token with write access or run `hf auth login`"
        )
    if status == 403:
        return (
            f"the token may not write to {namespace!r} on {url} (403 forbidden); use a token "
            f"with write access to {namespace!r} or push to your own namespace"
        )
    if status == 404:
        return (
            f"{repo_id}: namespace {namespace!r} or the repo was not found on {url} (404); "
            "check the user or organization name in --repo-id"
        )
    server = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"the Hub at {url} answered {status} for {repo_id}: {server}"
