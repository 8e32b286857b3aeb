"""lm-evaluation-harness on the model llmkit loaded: its tasks, its metrics, its numbers.

lm-eval (an optional extra: ``pip install 'llmkit[harness]'``) is used through its own Python
API: ``HFLM`` wraps the already-loaded model and tokenizer (a model folder, an adapter on its
base or a Hub name, all loaded the llmkit way) and ``simple_evaluate`` runs the tasks, so the
numbers are lm-eval's own. Task names are checked, and task YAML files or folders of the user
indexed, before the model loads, so a typo costs nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmkit.errors import LlmkitError
from llmkit.evaluation.report import jsonable

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

INSTALL_HINT = "--harness needs lm-evaluation-harness: pip install 'llmkit[harness]'"
LIST_HINT = "list them with `lm-eval ls tasks`, or give a task YAML file or folder"


@dataclass
class HarnessTasks:
    """What ``--harness`` named: lm-eval task names and the task manager that knows them."""

    names: list[str]
    manager: Any  # lm_eval.tasks.TaskManager
    include_paths: list[str] = field(default_factory=list)


@dataclass
class HarnessResult:
    """Headline numbers per task and metric, with what makes each reproducible."""

    results: list[dict[str, Any]]
    lm_eval_version: str
    raw: dict[str, Any]  # simple_evaluate's results, configs, versions, n-shot, n-samples


def import_lm_eval() -> Any:
    """The lm_eval package, or a one-line hint on how to install it."""
    try:
        import lm_eval
        import lm_eval.models.huggingface  # noqa: F401  (HFLM needs the [hf] dependencies)
    except ImportError:
        raise LlmkitError(INSTALL_HINT) from None
    return lm_eval


def resolve_tasks(specs: list[str]) -> HarnessTasks:
    """Task names from names, globs, YAML files and folders; unknown names fail in one line.

    lm-eval's built-in index (thousands of YAML files, seconds to read) is read only when a
    name is given; a run of the user's own YAML files indexes just their folders.
    """
    import_lm_eval()
    from lm_eval.tasks import TaskManager

    paths = [Path(s).expanduser() for s in specs if _looks_like_path(s)]
    for p in paths:
        if not p.exists():
            raise LlmkitError(f"--harness {p}: no such task YAML file or folder")
    include = sorted({str(p.resolve()) for p in paths if p.is_dir()})
    names_given = [s for s in specs if not _looks_like_path(s)]
    manager = TaskManager(include_path=include or None, include_defaults=bool(names_given))

    names: list[str] = []
    for spec in specs:
        if _looks_like_path(spec):
            names += _tasks_defined_in(manager, Path(spec).expanduser().resolve())
            continue  # a file is loaded by its path, so its folder need not be indexed
        matched = manager.match_tasks([spec]) if any(c in spec for c in "*?[") else []
        if spec in manager.all_tasks:
            matched = [spec]
        if not matched:
            close = difflib.get_close_matches(spec, manager.all_tasks, n=3)
            maybe = f" (did you mean {', '.join(close)}?)" if close else ""
            raise LlmkitError(f"--harness: unknown lm-eval task {spec!r}{maybe}; {LIST_HINT}")
        names += matched
    return HarnessTasks(names=list(dict.fromkeys(names)), manager=manager, include_paths=include)


def run_harness(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: HarnessTasks,
    *,
    num_fewshot: int | None = None,
    limit: float | None = None,
    batch_size: int = 8,
    max_length: int | None = None,
) -> HarnessResult | None:
    """``simple_evaluate`` on ``HFLM(model, tokenizer)``; None on the non-main processes."""
    lm_eval = import_lm_eval()
    from lm_eval.models.huggingface import HFLM
    from lm_eval.utils import hash_string

    try:
        with quiet():
            lm = HFLM(
                pretrained=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length
            )
            _share_work_across_processes(lm)
            out = lm_eval.simple_evaluate(
                model=lm,
                tasks=tasks.names,
                num_fewshot=num_fewshot,
                limit=int(limit) if limit is not None and limit >= 1 else limit,
                task_manager=tasks.manager,
                log_samples=True,  # the task hash is computed from the samples, as lm-eval does
            )
    except Exception as e:  # only a dataset that cannot be loaded is the user's to fix
        dataset = _dataset_being_loaded(e.__traceback__)
        if dataset is None:
            raise
        why = " ".join(str(e).split())[:200] or type(e).__name__
        offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or (
            os.environ.get("HF_HUB_OFFLINE") == "1"
        )
        hint = (
            "it comes from the Hub and this run is offline (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE): "
            "run once online to cache it"
            if offline
            else "check the network, or the task's dataset_path/dataset_kwargs"
        )
        raise LlmkitError(f"--harness: cannot load dataset {dataset} ({why}); {hint}") from None
    if out is None:  # lm-eval returns results on the main process only
        return None
    hashes = {
        task: hash_string(
            "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples)
        )
        for task, samples in out.pop("samples", {}).items()
    }
    return HarnessResult(
        results=headline_results(out, hashes),
        lm_eval_version=metadata.version("lm_eval"),
        raw={k: out.get(k) for k in ("results", "groups", "versions", "n-shot", "n-samples")}
        | {"configs": jsonable(out.get("configs", {}))},
    )


@contextlib.contextmanager
def quiet():
    """lm-eval's INFO/WARNING logging (model-passing notes, default aggregations) off."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def headline_results(out: dict[str, Any], hashes: dict[str, str]) -> list[dict[str, Any]]:
    """One row per task and metric from lm-eval's ``"acc,none"`` / ``"acc_stderr,none"`` keys."""
    rows = []
    n_samples = out.get("n-samples", {})
    better = out.get("higher_is_better", {})
    for task, values in {**out.get("results", {}), **out.get("groups", {})}.items():
        config = out.get("configs", {}).get(task, {})
        for key, value in values.items():
            if "," not in key or "_stderr," in key or not isinstance(value, int | float):
                continue
            metric, filt = key.split(",", 1)
            stderr = values.get(f"{metric}_stderr,{filt}")
            rows.append(
                {
                    "task": task,
                    "metric": metric if filt == "none" else f"{metric} ({filt})",
                    "value": float(value),
                    "stderr": float(stderr) if isinstance(stderr, int | float) else None,
                    "higher_is_better": better.get(task, {}).get(metric),
                    "num_examples": n_samples.get(task, {}).get("effective"),
                    "num_fewshot": out.get("n-shot", {}).get(task),
                    "version": out.get("versions", {}).get(task),
                    "hash": hashes.get(task),
                    "dataset": {
                        "path": config.get("dataset_path"),
                        "name": config.get("dataset_name"),
                        "split": config.get("test_split") or config.get("validation_split"),
                    },
                }
            )
    return rows


def _tasks_defined_in(manager: Any, path: Path) -> list[str]:
    """The tasks (and groups) in the folder ``path``, or the YAML file ``path`` itself."""
    from lm_eval.tasks._index import Kind, TaskIndex

    if path.is_file():
        try:
            entry = TaskIndex.entry_from_path(path)
        except Exception as e:  # yaml's parse errors, or a file that is no mapping
            why = " ".join(str(e).split())[:200]
            raise LlmkitError(f"--harness {path}: not a readable task YAML ({why})") from None
        names = [str(path)] if entry is not None else []
    else:
        names = [
            name
            for name, entry in manager.task_index.items()
            if entry.yaml_path is not None
            and entry.kind in (Kind.TASK, Kind.PY_TASK, Kind.GROUP)
            and path in Path(entry.yaml_path).resolve().parents
        ]
    if not names:
        raise LlmkitError(
            f"--harness {path}: no lm-eval task defined there (a YAML with a `task:` key)"
        )
    return sorted(names)


def _dataset_being_loaded(tb: TracebackType | None) -> str | None:
    """The dataset a failing lm-eval Task was downloading, read from its frame in the traceback.

    lm-eval raises whatever ``datasets.load_dataset`` raised, without naming the task.
    """
    while tb is not None:
        task = tb.tb_frame.f_locals.get("self")
        if tb.tb_frame.f_code.co_name == "download" and hasattr(task, "DATASET_PATH"):
            name = getattr(task, "DATASET_NAME", None)
            config = getattr(task, "config", None)
            owner = f" of task {config.task!r}" if getattr(config, "task", None) else ""
            return f"{task.DATASET_PATH!r}" + (f" (config {name!r})" if name else "") + owner
        tb = tb.tb_next
    return None


def _share_work_across_processes(lm: Any) -> None:
    """Under ``accelerate launch`` each process scores its share of the requests.

    HFLM sets up data parallelism only for models it loads itself; for a model passed in it
    leaves rank 0 of 1, so the ranks are set here the way HFLM sets them.
    """
    from accelerate import Accelerator, PartialState

    state = PartialState()
    if state.num_processes > 1:
        lm.accelerator = Accelerator()
        lm._rank = state.process_index
        lm._world_size = state.num_processes


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or "/" in spec or Path(spec).is_dir()
