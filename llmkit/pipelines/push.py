"""`llmkit push RUN_DIR --repo-id NAMESPACE/NAME`: publish a run folder on the Hub.

Check the folder loads as its users will load it, choose its files from an allow-list, scan
them for tokens, render the card for the repo (with the run's own evaluation), then create the
repo (private unless --public) and upload, all with ``huggingface_hub``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmkit.cards import HubCardInfo, render_hub_card
from llmkit.config.sections import HubConfig, check_repo_id, check_revision
from llmkit.data.sources import is_hub_name
from llmkit.errors import LlmkitError
from llmkit.hub.card import (
    base_metadata,
    hub_datasets,
    own_eval_results,
    reproduce_command,
    run_config,
)
from llmkit.hub.check import check_model_folder
from llmkit.hub.files import Selection, select_files
from llmkit.hub.secrets import check_no_secrets
from llmkit.hub.upload import hub_token, upload


def run(
    run_dir: str | Path,
    repo_id: str,
    *,
    private: bool = True,
    revision: str = "main",
    commit_message: str | None = None,
    create_pr: bool = False,
    include: list[str] | tuple[str, ...] = (),
    license: str | None = None,
    dry_run: bool = False,
) -> str | None:
    """The commit (or pull request) URL; None for a dry run. Nothing is sent before every
    check has passed, and nothing in the folder is written."""
    check_repo_id(repo_id)
    check_revision(revision)
    folder = check_model_folder(run_dir)
    selection = select_files(folder.path, include)
    token = hub_token(required=not dry_run)
    check_no_secrets(folder.path, selection.files, token)
    card = render_card(folder, repo_id, private=private, revision=revision, license=license)

    print(describe(folder.path, selection, repo_id, private, len(card.encode())))
    if folder.adapter and not is_hub_name(folder.base_model):
        print(
            f"note: the adapter's base model {folder.base_model} is a local folder, so the "
            "repo's users cannot load it; push the base too, or `llmkit merge` and push that"
        )
    if dry_run:
        print(f"\n--- README.md as pushed ---\n{card}")
        return None
    url = upload(
        folder.path,
        selection.files,
        card,
        repo_id=repo_id,
        token=token,
        private=private,
        revision=revision,
        commit_message=commit_message,
        create_pr=create_pr,
    )
    print(f"pushed to {url}")
    return url


def render_card(folder, repo_id: str, *, private: bool, revision: str, license: str | None):
    command, cfg = run_config(folder.path)
    base = folder.base_model or (cfg.model.name_or_path if cfg is not None else None)
    meta = base_metadata(base)
    local = folder.path / "README.md"
    info = HubCardInfo(
        repo_id=repo_id,
        title=repo_id.split("/")[1],
        adapter=folder.adapter,
        private=private,
        base_model=base if base and is_hub_name(base) else None,
        license=license or meta.get("license"),
        language=meta.get("language"),
        datasets=hub_datasets(cfg),
        eval_results=own_eval_results(folder.path, cfg),
        reproduce=reproduce_command(repo_id, command, revision),
    )
    return render_hub_card(local.read_text() if local.is_file() else None, info)


def describe(folder: Path, selection: Selection, repo_id: str, private: bool, card: int) -> str:
    """The files with sizes (the card's as rendered), and each file left out with the reason."""
    files = sorted(set(selection.files) | {"README.md"})
    sizes = {f: card if f == "README.md" else (folder / f).stat().st_size for f in files}
    width = max(len(f) for f in files)
    lines = [
        f"{repo_id} ({'private' if private else 'public'}): {len(files)} files, "
        f"{_size(sum(sizes.values()))}"
    ]
    lines += [f"  {f:<{width}}  {_size(sizes[f]):>9}" for f in files]
    if selection.left_out:
        lines.append(f"left out ({len(selection.left_out)}):")
        lines += [f"  {f}: {why}" for f, why in selection.left_out]
    return "\n".join(lines)


def _size(n: float) -> str:
    if n < 1024:
        return f"{int(n):,} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"
    raise AssertionError("unreachable")


def push_run(out: Path, hub: HubConfig) -> str | None:
    """The recipe hook: ``hub.push: true`` pushes the finished run (after its evaluation)."""
    if not hub.push:
        return None
    try:
        return run(out, hub.repo_id, private=hub.private, revision=hub.revision)
    except LlmkitError as e:
        raise LlmkitError(
            f"{e} (the run is saved in {out}; push it later with "
            f"`llmkit push {out} --repo-id {hub.repo_id}`)"
        ) from None


def from_args(args: argparse.Namespace) -> str | None:
    return run(
        args.run_dir,
        args.repo_id,
        private=not args.public,
        revision=args.revision,
        commit_message=args.commit_message,
        create_pr=args.create_pr,
        include=args.include,
        license=args.license,
        dry_run=args.dry_run,
    )
