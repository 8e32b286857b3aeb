"""Raw text -> document steps -> split -> tokenizer -> packed, memory-mapped blocks.

``prepare_data`` is pretraining's first step: it caches the result under ``data.cache_dir``,
keyed by the sources and every setting that changes the output, so a second run reads it back.
``prepare_to`` writes to a folder of the user's choice (``llmkit data prepare``). Both build
in a hidden temporary folder beside the target and rename it into place at the very end, so
an error or a crash never leaves a half-written dataset that looks complete.

The stages, each bounded in memory: stream documents through the steps and spill the kept ones
to disk per split; train the tokenizer on the spilled training documents (unless one is
given); tokenize the spills chunk by chunk (in parallel worker processes on large inputs) and
append the tokens to the block files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from llmkit.config import DataConfig, TokenizerConfig, to_dict
from llmkit.data import pack
from llmkit.data.documents import Doc, StepReport
from llmkit.data.encode import PARALLEL_MIN_BYTES, Chunk, DocSpill, Encoder, default_num_proc
from llmkit.data.report import build_report, format_report, load_report, save_report
from llmkit.data.sources import content_fingerprint, files_fingerprint
from llmkit.data.stream import Sources, documents, new_reports
from llmkit.data.tokenizer import load_tokenizer, tokenizer_fingerprint, train_tokenizer
from llmkit.errors import ConfigError, DataError
from llmkit.permissions import ordinary_modes

FORMAT = 2  # bump when the folder layout changes: old caches are then rebuilt
WORK = ".work"  # spilled documents, inside the temporary folder, deleted before the rename


@dataclass
class PreparedData:
    tokenizer: PreTrainedTokenizerBase
    splits: dict[str, pack.PackedSplit]
    manifest: dict
    folder: Path
    cached: bool
    report: dict | None = None


def prepare_data(
    data: DataConfig,
    tok: TokenizerConfig,
    *,
    trust_remote_code: bool = False,
    show_progress: bool = True,
) -> PreparedData:
    """Packed train and validation blocks for pretraining, from the cache when they exist.

    ``data.train_files`` may also name one folder written by ``llmkit data prepare``: it is used
    as it is. ``show_progress`` also prints the report table after a fresh preparation.
    """
    prepared = open_prepared_input(data, tok, trust_remote_code)
    if prepared is not None:
        return prepared
    check_settings(data, tok)
    sources = Sources.resolve(data)
    folder = Path(data.cache_dir) / f"packed-{cache_key(data, tok, sources.fingerprint(data))}"
    if pack.is_complete(folder):
        return load_prepared(folder, cached=True)
    prepared = build(
        folder,
        sources,
        data,
        tok,
        trust_remote_code=trust_remote_code,
        show_progress=show_progress,
        require_validation=True,
    )
    if show_progress:
        print(format_report(prepared.report))
    return prepared


def prepare_to(
    folder: str | Path,
    data: DataConfig,
    tok: TokenizerConfig,
    *,
    trust_remote_code: bool = False,
    show_progress: bool = True,
    before_commit: Callable[[Path], None] | None = None,
) -> PreparedData:
    """Prepare into ``folder`` (replacing what is there); ``before_commit(tmp)`` may add files."""
    check_settings(data, tok)
    sources = Sources.resolve(data)
    return build(
        Path(folder),
        sources,
        data,
        tok,
        trust_remote_code=trust_remote_code,
        show_progress=show_progress,
        require_validation=False,
        before_commit=before_commit,
    )


def load_prepared(folder: Path, cached: bool = True) -> PreparedData:
    tokenizer = load_tokenizer(str(folder / "tokenizer"))
    manifest = pack.read_manifest(folder)
    return PreparedData(
        tokenizer, pack.read_packed(folder), manifest, folder, cached, load_report(folder)
    )


def check_settings(data: DataConfig, tok: TokenizerConfig) -> None:
    """What can be checked before reading anything."""
    if data.block_size < 2:
        raise ConfigError(f"data.block_size must be >= 2, got {data.block_size}")
    if data.clean.wants_tokens and not tok.name_or_path:
        raise ConfigError(
            "data.clean.min_tokens/max_tokens need tokenizer.name_or_path (a tokenizer trained "
            "here is built after cleaning); set it, or filter with data.clean.min_chars/max_chars"
        )


def cache_key(data: DataConfig, tok: TokenizerConfig, data_fingerprint: str) -> str:
    """Every setting that changes the packed output, and nothing that does not."""
    spec = {
        "data": data_fingerprint,
        "settings": output_settings(data),
        "tokenizer": tok.name_or_path or f"bpe-{tok.vocab_size}",
        "format": FORMAT,
    }
    if tok.name_or_path and Path(tok.name_or_path).exists():  # a local tokenizer may change
        spec["tokenizer_files"] = files_fingerprint([Path(tok.name_or_path)])
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def output_settings(data: DataConfig) -> dict:
    settings = to_dict(data)
    for where in ("cache_dir", "num_proc"):  # where and how fast, not what
        settings.pop(where)
    return settings


def open_prepared_input(
    data: DataConfig, tok: TokenizerConfig, trust_remote_code: bool
) -> PreparedData | None:
    """A folder written by ``llmkit data prepare``, named as the only train file."""
    if len(data.train_files) != 1 or not pack.is_complete(Path(data.train_files[0])):
        return None
    folder = Path(data.train_files[0])
    prepared = load_prepared(folder, cached=True)
    block = prepared.manifest["block_size"]
    if block != data.block_size:
        raise ConfigError(
            f"data.train_files: {folder} was prepared with block_size {block}, not "
            f"data.block_size {data.block_size}; set data.block_size {block} or prepare again"
        )
    if tok.name_or_path and tokenizer_fingerprint(
        load_tokenizer(tok.name_or_path, trust_remote_code)
    ) != prepared.manifest.get("tokenizer_hash"):
        raise ConfigError(
            f"tokenizer.name_or_path {tok.name_or_path} is not the tokenizer {folder} was "
            "prepared with; leave tokenizer.name_or_path empty to use the prepared one"
        )
    if not prepared.splits.get("validation") or prepared.splits["validation"].num_blocks == 0:
        raise DataError(
            f"data.train_files: {folder} has no validation blocks; prepare it again with "
            "data.validation_split > 0 or data.validation_files"
        )
    return prepared


def build(
    folder: Path,
    sources: Sources,
    data: DataConfig,
    tok: TokenizerConfig,
    *,
    trust_remote_code: bool,
    show_progress: bool,
    require_validation: bool,
    before_commit: Callable[[Path], None] | None = None,
) -> PreparedData:
    tokenizer = load_tokenizer(tok.name_or_path, trust_remote_code) if tok.name_or_path else None
    count_tokens = token_counter(tokenizer) if data.clean.wants_tokens else None
    seconds: dict[str, float] = {}
    packer = None
    with staging(folder) as tmp:
        try:
            start = time.perf_counter()
            if tokenizer is not None:  # known: tokenize each chunk while the next is read
                packer = make_packer(tokenizer, tmp, data, sources.size_estimate(), show_progress)
            reports = new_reports()
            stream = documents(sources, data, reports, count_tokens)
            spills = spill(stream, tmp / WORK, show_progress, packer.add if packer else None)
            check_documents(spills, reports, require_validation)
            seconds["read_and_steps"] = time.perf_counter() - start
            if packer is None:
                start = time.perf_counter()
                tokenizer = train_tokenizer(spills["train"].batches(), tok.vocab_size)
                seconds["train_tokenizer"] = time.perf_counter() - start
                size = sum(s.bytes for s in spills.values())
                packer = make_packer(tokenizer, tmp, data, size, show_progress)
                for name, s in spills.items():
                    for chunk in s.chunks:
                        packer.add(name, chunk)
            start = time.perf_counter()
            counts = packer.finish(list(spills))
            seconds["tokenize_and_pack"] = time.perf_counter() - start
        finally:
            if packer is not None:
                packer.close()
        tokenizer.save_pretrained(tmp / "tokenizer")
        check_blocks(counts, reports, data, require_validation)
        shutil.rmtree(tmp / WORK)
        manifest = {
            "format": FORMAT,
            "block_size": data.block_size,
            "packing": data.packing,
            "remainder": data.remainder if data.packing == "document" else None,
            "tokenizer": tok.name_or_path or f"trained byte-level BPE, vocab {tok.vocab_size}",
            "tokenizer_hash": tokenizer_fingerprint(tokenizer),
            "vocab_size": len(tokenizer),
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "data_fingerprint": sources.fingerprint(data),
            "sources": source_fingerprints(sources, data),
            "settings": output_settings(data),
            "counts": counts,
            "splits": {
                name: {
                    "num_blocks": c["blocks"],
                    "dtype": pack.token_dtype(len(tokenizer)).name,
                    "lengths": data.packing == "document" and data.remainder == "pad",
                }
                for name, c in counts.items()
            },
        }
        pack.write_manifest(tmp, manifest)
        report = build_report(
            reports,
            counts,
            {
                "block_size": data.block_size,
                "packing": data.packing,
                "tokenizer": manifest["tokenizer"],
                "seconds": {k: round(v, 3) for k, v in seconds.items()},
            },
        )
        save_report(tmp, report)
        if before_commit is not None:
            before_commit(tmp)
    return PreparedData(tokenizer, pack.read_packed(folder), manifest, folder, False, report)


@contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder`` that replaces it on success and vanishes on error.

    Parent folders created for it are removed again on error, so a failed run leaves nothing.
    """
    created = [p for p in [folder.parent, *folder.parent.parents] if not p.exists()]
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-tmp-", dir=folder.parent))
    try:
        yield tmp
        ordinary_modes(tmp)  # mkdtemp made it private; the result is an ordinary folder
        old = None
        if folder.exists():  # move the old one aside first, so the swap is two renames
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}-old-", dir=folder.parent))
            os.replace(folder, old / folder.name)
        os.replace(tmp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # innermost first
            try:
                p.rmdir()
            except OSError:
                break
        raise


def spill(
    stream: Iterable[tuple[str, Doc]],
    folder: Path,
    show_progress: bool,
    on_chunk: Callable[[str, Chunk], None] | None = None,
) -> dict[str, DocSpill]:
    """Write each split's kept documents to its own file; train and validation always exist.

    ``on_chunk(split, chunk)`` is called for every chunk as soon as it is complete on disk.
    """
    folder.mkdir()
    spills: dict[str, DocSpill] = {}
    # delay: small inputs show no bar at all; leave=False on error: only the error line stays
    bar = tqdm(desc="read and filter", unit=" docs", delay=1, disable=not show_progress)
    try:
        for name in ("train", "validation"):
            spills[name] = DocSpill(folder / f"{name}.txt")
        for name, doc in stream:
            if name not in spills:
                spills[name] = DocSpill(folder / f"{name}.txt")
            chunk = spills[name].write(doc.text)
            if chunk is not None and on_chunk is not None:
                on_chunk(name, chunk)
            bar.update()
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()
        last = {name: s.close() for name, s in spills.items()}
    for name, chunk in last.items():
        if chunk is not None and on_chunk is not None:
            on_chunk(name, chunk)
    return spills


def check_documents(
    spills: dict[str, DocSpill], reports: dict[str, StepReport], require_validation: bool
) -> None:
    """An empty train (or needed validation) split is an error that says which step emptied it."""
    empty = [
        name
        for name in ("train", "validation")
        if spills[name].documents == 0 and (name == "train" or require_validation)
    ]
    if not empty:
        return
    if "train" not in empty and not mostly_duplicates(reports):
        advice = "set data.validation_files or raise data.validation_split"
    else:
        advice = "add data or relax the filters above"
    summary = step_summary(reports, sum(s.documents for s in spills.values()))
    raise DataError(f"the {' and '.join(empty)} split is empty: {summary}; {advice}")


def check_blocks(
    counts: dict[str, dict],
    reports: dict[str, StepReport],
    data: DataConfig,
    require_validation: bool,
) -> None:
    for name in ("train", "validation") if require_validation else ("train",):
        c = counts[name]
        if c["blocks"] == 0:
            summary = step_summary(reports, sum(c["documents"] for c in counts.values()))
            raise DataError(
                f"the {name} split has {c['tokens']:,} tokens in {c['documents']:,} documents, "
                f"fewer than one block of {data.block_size}: {summary}; add data or lower "
                "data.block_size"
            )


def mostly_duplicates(reports: dict[str, StepReport]) -> bool:
    dups = reports["exact_dedup"].docs_removed + reports["near_dedup"].docs_removed
    return dups > 0 and dups >= reports["read"].docs_out / 2


def step_summary(reports: dict[str, StepReport], kept: int) -> str:
    """What happened to the documents, in a few words, for an error message."""
    read = reports["read"]
    if read.docs_out == 0:
        return "the sources hold no text (check data.train_files and data.text_column)"
    removed = [f"{k}={n:,}" for r in list(reports.values())[1:] for k, n in r.removed.items()]
    summary = f"{read.docs_out:,} documents read, {kept:,} kept"
    if removed:
        summary += f" (removed: {', '.join(removed)})"
    if mostly_duplicates(reports):
        summary += (
            "; the corpus is (almost) all duplicates, so nothing was written (switch off "
            "data.exact_dedup.enabled / data.near_dedup.enabled to keep them)"
        )
    return summary


def make_packer(
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    data: DataConfig,
    size: int,
    show_progress: bool,
) -> pack.ChunkPacker:
    """Worker processes for ``size`` bytes of text or more, unless ``data.num_proc`` says."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise DataError(
            f"tokenizer {tokenizer.name_or_path} has no fast (Rust) version; use a tokenizer "
            "with a tokenizer.json"
        )
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError(
            f"tokenizer {tokenizer.name_or_path} has no EOS token, which separates documents; "
            "use one that has"
        )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    num_proc = data.num_proc or (default_num_proc() if size >= PARALLEL_MIN_BYTES else 1)
    encoder = Encoder(backend, eos, pack.token_dtype(len(tokenizer)), num_proc)
    return pack.ChunkPacker(
        encoder, folder, data.block_size, data.packing, data.remainder, pad, show_progress
    )


def token_counter(tokenizer: PreTrainedTokenizerBase) -> Callable[[str], int]:
    backend = tokenizer.backend_tokenizer
    return lambda text: len(backend.encode(text, add_special_tokens=False).ids)


def source_fingerprints(sources: Sources, data: DataConfig) -> dict[str, str]:
    """Content hashes of the local inputs, and the names of Hub datasets used."""
    out = content_fingerprint([*sources.validation, *sources.train, *sources.eval_files])
    if data.dataset_name:
        out[data.dataset_name] = f"hub:{data.dataset_config_name or 'default'}"
    if data.decontaminate.eval_dataset:
        out[data.decontaminate.eval_dataset] = f"hub:{data.decontaminate.eval_split}"
    return out
