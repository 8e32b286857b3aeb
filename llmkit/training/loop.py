"""The one training loop, shared by pretraining, fine-tuning and distillation.

Accelerate owns devices, DDP/FSDP and mixed precision; this loop owns the data order, the
loss normalisation across micro-batches and processes, logging and checkpoints. A step:
fetch this process's micro-batches, count the target tokens of the whole global batch,
backward each micro-batch's token-sum loss divided by that count, clip, step, log.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import set_seed
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from llmkit.config import TrainConfig
from llmkit.errors import LlmkitError
from llmkit.training import checkpoint
from llmkit.training.batches import micro_batches
from llmkit.training.compile_record import record_compile
from llmkit.training.logging import MetricsLog
from llmkit.training.loss import causal_lm_loss, has_plain_causal_lm_loss
from llmkit.training.optim import lr_at, make_optimizer, set_lr

EvalFn = Callable[[torch.nn.Module], dict[str, float]]
#: (model, micro-batch, target tokens of the global batch) -> that micro-batch's token-sum loss
#: divided by the count; None is the model's own cross-entropy, through
#: :func:`llmkit.training.loss.causal_lm_loss` unless train.chunked_loss is off (distillation
#: passes its own)
LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
# Called after each validation pass with (step, metrics), e.g. to report to a tuner; an
# exception it raises (a pruned trial) ends training and goes through to the caller.
OnEvaluate = Callable[[int, dict[str, float]], None]
#: steps timed at the start of a run: the first holds the compile, the rest say what a step costs
COMPILE_TIMED_STEPS = 8


@dataclass
class TrainResult:
    step: int
    tokens_seen: int
    train_loss: float
    eval_metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: int | None = None
    tokens_per_second: float = 0.0


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """CPU-only machines get ``cpu=True`` so ``accelerate launch`` starts real gloo DDP.

    ``auto`` settings must be settled first (:func:`llmkit.training.precision.settle`)."""
    if "auto" in (cfg.mixed_precision, cfg.torch_compile):
        raise ValueError("settle train.mixed_precision/torch_compile 'auto' before training")
    # Accelerate keeps precision in a process-wide singleton; forget it (but not the process
    # group) so several runs with different settings can share one notebook or test session.
    AcceleratorState._reset_state(reset_partial_state=False)
    if cfg.deterministic:
        # compiled CPU runs differed run to run (measured), most likely Inductor's parallel
        # atomic adds for accumulating index_put (the embedding's backward), which this mode
        # sends to aten's sorted kernel. warn_only: ops without one warn instead of failing.
        torch.use_deterministic_algorithms(True, warn_only=True)
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=cfg.mixed_precision,
        dynamo_backend="inductor" if cfg.torch_compile == "true" else None,
    )


def process_state() -> PartialState:
    """The processes of this run (for work before the accelerator exists, such as data
    preparation); CPU-only machines get gloo, as in :func:`make_accelerator`."""
    return PartialState(cpu=not torch.cuda.is_available())


def tokens_per_step(cfg: TrainConfig, sequence_length: int) -> int:
    """Tokens of one optimizer step over all processes (at most, for padded batches)."""
    per_process = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    return per_process * process_state().num_processes * sequence_length


def count_targets(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Tokens that carry a loss after the model's one-position label shift (a tensor on the
    batch's device: reading it on the host would wait for the device every micro-batch)."""
    return (batch["labels"][:, 1:] != -100).sum()


def train(
    model: torch.nn.Module,
    train_set: torch.utils.data.Dataset,
    cfg: TrainConfig,
    output_dir: Path,
    accelerator: Accelerator,
    *,
    collate: Callable[[list], dict[str, torch.Tensor]] = default_collate,
    evaluate: EvalFn | None = None,
    desc: str = "train",
    loss_fn: LossFn | None = None,
    on_evaluate: OnEvaluate | None = None,
    compile_key: str | None = None,
) -> TrainResult:
    world, rank = accelerator.num_processes, accelerator.process_index
    global_batch = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps * world
    if len(train_set) < cfg.per_device_train_batch_size:
        raise LlmkitError(
            f"{len(train_set)} training examples is fewer than one batch; add data or lower "
            "train.per_device_train_batch_size"
        )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg)
    if loss_fn is None and cfg.chunked_loss and has_plain_causal_lm_loss(model):
        loss_fn = causal_lm_loss
    model, optimizer = accelerator.prepare(model, optimizer)

    start_step, tokens_seen = 0, 0
    resume_from = checkpoint.find_resume_checkpoint(output_dir, cfg.resume)
    if resume_from is not None:
        state = checkpoint.load_checkpoint(accelerator, resume_from)
        start_step, tokens_seen = state["step"], state["tokens_seen"]
        accelerator.print(f"resumed from {resume_from} at step {start_step}")

    log = (
        MetricsLog(output_dir, "tensorboard" in cfg.report_to, start_step if resume_from else None)
        if accelerator.is_main_process
        else None
    )
    batches = micro_batches(
        train_set,
        batch_size=cfg.per_device_train_batch_size,
        seed=cfg.seed,
        start=start_step * cfg.gradient_accumulation_steps * world,
        rank=rank,
        world=world,
        collate=collate,
    )
    eval_metrics: dict[str, float] = {}
    if evaluate is not None and start_step == 0:
        eval_metrics = _evaluate(model, evaluate, 0, log, accelerator, on_evaluate)

    bar = tqdm(
        total=cfg.max_steps,
        initial=start_step,
        desc=desc,
        disable=not (cfg.progress_bar and accelerator.is_local_main_process),
        dynamic_ncols=True,
    )
    model.train()
    # The loss stays on the device between logging steps: one host sync per logging window
    # instead of one per step lets a GPU run ahead of Python.
    window_loss = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    window_steps, window_tokens, window_start = 0, 0, time.perf_counter()
    run_tokens, run_start = 0, time.perf_counter()
    last_loss = torch.full((), float("nan"), device=accelerator.device)
    first_steps: list[float] = []  # seconds of the first few steps: the compile's cost
    for step in range(start_step, cfg.max_steps):
        step_start = time.perf_counter()
        lr = lr_at(step, cfg)
        set_lr(optimizer, lr)
        micro = [
            {k: v.to(accelerator.device) for k, v in next(batches).items()}
            for _ in range(cfg.gradient_accumulation_steps)
        ]
        local_targets = torch.stack([count_targets(b) for b in micro]).sum()
        global_targets = accelerator.reduce(local_targets, reduction="sum").clamp(min=1)
        step_loss = torch.zeros((), device=accelerator.device)
        for i, batch in enumerate(micro):
            sync = i == len(micro) - 1
            with nullcontext() if sync else accelerator.no_sync(model):
                if loss_fn is None:
                    loss = model(**batch, num_items_in_batch=global_targets).loss
                else:
                    loss = loss_fn(model, batch, global_targets)
                # DDP averages gradients over processes; the loss is already a global mean.
                accelerator.backward(loss * world)
            step_loss += loss.detach()
        grad_norm = (
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            if cfg.max_grad_norm > 0
            else None
        )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if len(first_steps) < COMPILE_TIMED_STEPS:
            first_steps.append(time.perf_counter() - step_start)

        step_tokens = sum(b["input_ids"].numel() for b in micro) * world
        tokens_seen += step_tokens
        window_tokens += step_tokens
        run_tokens += step_tokens
        last_loss = accelerator.reduce(step_loss, reduction="sum")
        window_loss += last_loss
        window_steps += 1
        done = step + 1
        bar.update(1)
        if done % cfg.logging_steps == 0 or done == cfg.max_steps:
            mean_loss = window_loss.item() / window_steps
            if not math.isfinite(mean_loss):
                raise LlmkitError(
                    f"training loss became {mean_loss} by step {done}; lower "
                    "train.learning_rate or use train.mixed_precision=bf16 instead of fp16"
                )
            elapsed = time.perf_counter() - window_start
            record = {
                "step": done,
                "train_loss": mean_loss,
                "lr": lr,
                "grad_norm": float(grad_norm) if grad_norm is not None else None,
                "tokens_seen": tokens_seen,
                "tokens_per_s": window_tokens / max(elapsed, 1e-9),
                "epoch": done * global_batch / len(train_set),
            }
            bar.set_postfix(
                loss=f"{record['train_loss']:.3f}",
                lr=f"{lr:.2e}",
                tok_s=f"{record['tokens_per_s']:,.0f}",
            )
            if log:
                log.log(record)
            window_loss.zero_()
            window_steps, window_tokens = 0, 0
            window_start = time.perf_counter()
        if (
            evaluate is not None
            and cfg.eval_steps
            and done % cfg.eval_steps == 0
            and done != cfg.max_steps
        ):
            eval_metrics = _evaluate(model, evaluate, done, log, accelerator, on_evaluate)
        if cfg.save_steps and done % cfg.save_steps == 0 and done != cfg.max_steps:
            checkpoint.save_checkpoint(
                accelerator, output_dir, done, {"tokens_seen": tokens_seen}, cfg.save_total_limit
            )
    bar.close()
    run_seconds = time.perf_counter() - run_start
    if cfg.torch_compile == "true" and compile_key and accelerator.is_main_process:
        _record_compile(first_steps, compile_key, accelerator)
    if evaluate is not None:
        eval_metrics = _evaluate(model, evaluate, cfg.max_steps, log, accelerator, on_evaluate)
    if log:
        log.close()
    return TrainResult(
        step=cfg.max_steps,
        tokens_seen=tokens_seen,
        train_loss=last_loss.item(),
        eval_metrics=eval_metrics,
        resumed_from=start_step if resume_from else None,
        tokens_per_second=run_tokens / max(run_seconds, 1e-9),
    )


def _record_compile(first_steps: list[float], key: str, accelerator: Accelerator) -> None:
    """The first step's seconds beyond a later step's are the compile's; recorded so the next
    run of this model here can count Inductor's warm cache."""
    if len(first_steps) < 3:
        return  # too few steps to tell compiling from stepping
    step = statistics.median(first_steps[1:])
    seconds = max(first_steps[0] - step, 0.0)
    record_compile(key, seconds)
    accelerator.print(
        f"torch.compile: first step {first_steps[0]:.1f} s, then {step:.2f} s a step "
        f"(~{seconds:.0f} s compiling, recorded for the compile rule)"
    )


def _evaluate(
    model: torch.nn.Module,
    evaluate: EvalFn,
    step: int,
    log: MetricsLog | None,
    accelerator,
    on_evaluate: OnEvaluate | None = None,
) -> dict[str, float]:
    model.eval()
    # Validation runs eager: a compiled model would compile a no-grad graph as well, and again
    # for a last, shorter batch. On `make pretrain` that kept 90 s outside the training steps
    # (12 s eager), more than compiling saved in them.
    metrics = evaluate(getattr(model, "_orig_mod", model))
    model.train()
    if log:
        log.log({"step": step, **metrics})
    summary = "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, int | float))
    if accelerator.is_main_process:
        tqdm.write(f"step {step}: {summary}")  # above the progress bar, not through it
    if on_evaluate is not None:
        try:
            on_evaluate(step, metrics)
        except BaseException:
            if log:
                log.close()
            raise
    return metrics
