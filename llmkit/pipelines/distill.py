"""Distillation: the steps a user would describe, in order.

Load the teacher, pack the data with its tokenizer, build the student (same vocabulary),
optionally cache the teacher's top-K log-probs beside the packed data, train on the shared
loop with the distillation loss, save the student with a card saying how it was made.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from llmkit import config as config_lib
from llmkit.cards import CardInfo, training_facts, write_card
from llmkit.config import ModelConfig, TokenizerConfig
from llmkit.config.distill import DistillConfig
from llmkit.data.pack import BlockDataset
from llmkit.data.prepare import prepare_data
from llmkit.data.teacher_cache import (
    CachedTeacherDataset,
    build_teacher_cache,
    cache_folder,
)
from llmkit.errors import ConfigError, LlmkitError
from llmkit.evaluation.load import LoadedModel, load_for_evaluation
from llmkit.models.load import (
    build_model,
    count_parameters,
    describe,
    max_positions,
    resolve_config,
)
from llmkit.outputs import check_output_dir, greedy_sample, save_model, start_output_dir
from llmkit.pipelines.push import push_run
from llmkit.training.distill import distill_loss_fn, distill_validation, teacher_cache_fn
from llmkit.training.logging import METRICS_FILE, plot_losses, read_metrics
from llmkit.training.loop import (
    OnEvaluate,
    TrainResult,
    make_accelerator,
    process_state,
    tokens_per_step,
    train,
)
from llmkit.training.precision import settle, step_flops


@dataclass
class DistillResult:
    output_dir: Path
    train: TrainResult
    kl_before: float | None
    kl_after: float
    cache: Path | None


def run(cfg: DistillConfig, on_evaluate: OnEvaluate | None = None) -> DistillResult:
    """``on_evaluate(step, metrics)`` sees each validation pass (`llmkit tune` prunes there)."""
    cfg.validate()
    resuming = cfg.train.resume != "no"
    out = check_output_dir(cfg.output_dir, cfg.overwrite, resuming)
    state = process_state()
    teacher = load_teacher(cfg, state.device)
    vocab = teacher_vocab(teacher)
    student_cfg = student_config(cfg, vocab)  # refused before any data is read
    with state.main_process_first():
        data = prepare_data(
            cfg.data,
            TokenizerConfig(name_or_path=cfg.teacher),
            trust_remote_code=cfg.model.trust_remote_code,
            show_progress=state.is_local_main_process,
        )
    student = build_model(student_cfg, data.tokenizer, seed=cfg.train.seed)
    train_set = BlockDataset(data.splits["train"])
    val_set = BlockDataset(data.splits["validation"])
    settled = settle(
        cfg.train,
        flops_per_step=step_flops(student, tokens_per_step(cfg.train, cfg.data.block_size)),
        model=student,
        sequence_length=cfg.data.block_size,
    )
    cfg = replace(cfg, train=settled.train)
    accelerator = make_accelerator(cfg.train)

    cache = None
    d = cfg.distill
    if d.cache_topk:
        folder = cache_folder(data.folder, teacher.fingerprint, d.cache_topk, d.temperature)
        with accelerator.main_process_first():
            cache = build_teacher_cache(
                folder,
                {"train": data.splits["train"]},
                teacher_cache_fn(teacher.model, d.cache_topk, d.temperature, vocab),
                k=d.cache_topk,
                vocab_size=vocab,
                batch_size=d.cache_batch_size,
                show_progress=accelerator.is_local_main_process,
            )
        train_set = CachedTeacherDataset(train_set, cache)
        loss_fn = distill_loss_fn(d.alpha, d.temperature)
    else:
        loss_fn = distill_loss_fn(d.alpha, d.temperature, teacher=teacher.model)
    accelerator.print(
        f"teacher: {teacher.parameters:,} parameters; student: {count_parameters(student):,}; "
        f"data: {len(train_set):,} train and {len(val_set):,} validation blocks of "
        f"{cfg.data.block_size} tokens; teacher "
        + (f"top-{d.cache_topk} cached at {cache.folder}" if cache else "on the fly")
        + f"\n{settled.describe()}"
    )

    start_output_dir(out, cfg.overwrite, resuming, accelerator)
    if accelerator.is_main_process:
        config_lib.save(cfg, out)

    def evaluate(m):
        return distill_validation(
            m,
            teacher.model,
            val_set,
            accelerator,
            batch_size=cfg.train.per_device_eval_batch_size,
            max_batches=cfg.train.eval_max_batches,
        )

    result = train(
        student,
        train_set,
        cfg.train,
        out,
        accelerator,
        evaluate=evaluate,
        desc="distill",
        on_evaluate=on_evaluate,
        compile_key=settled.compile_key,
        loss_fn=loss_fn,
    )
    save_model(accelerator, student, data.tokenizer, out)
    student = accelerator.unwrap_model(student)
    sample = greedy_sample(student, data.tokenizer, cfg.sample_prompt)
    before = first_metric(out, "val_kl")
    after = result.eval_metrics.get("val_kl", float("nan"))
    if accelerator.is_main_process:
        plot_losses(out / METRICS_FILE, out / "loss.png", title=f"distillation {out.name}")
        write_card(out, card_info(cfg, student, teacher, result, before, settled.precision))
    accelerator.print(
        f"\nheld-out KL(teacher || student): {after:.4f}"
        + (f" (untrained: {before:.4f})" if before is not None else "")
        + f"; student perplexity {result.eval_metrics.get('val_ppl', float('nan')):.2f}"
        + f"\nsaved to: {out}\nsample: {sample!r}"
    )
    if accelerator.is_main_process:
        push_run(out, cfg.hub)
    return DistillResult(out, result, before, after, cache.folder if cache else None)


def load_teacher(cfg: DistillConfig, device) -> LoadedModel:
    try:
        teacher = load_for_evaluation(
            cfg.teacher,
            device=str(device),
            trust_remote_code=cfg.model.trust_remote_code,
            show_progress=False,
        )
    except LlmkitError as e:
        raise LlmkitError(str(e).replace("--model", "--teacher")) from None
    teacher.model.requires_grad_(False)
    return teacher


def teacher_vocab(teacher: LoadedModel) -> int:
    return teacher.model.get_output_embeddings().out_features


def student_config(cfg: DistillConfig, vocab: int) -> ModelConfig:
    """The student's model config from its preset or config, with the teacher's output size;
    a vocabulary or a block size it cannot take is refused here."""
    model_cfg = cfg.model
    if model_cfg.name_or_path is None:
        overrides = {"vocab_size": vocab} | model_cfg.config_overrides
        model_cfg = replace(model_cfg, config_overrides=overrides)
    config = resolve_config(model_cfg, vocab_size=vocab)
    size = config.get_text_config().vocab_size
    if size != vocab:
        raise ConfigError(
            f"student vocabulary {size} differs from the teacher's {vocab}: the KL compares "
            "token by token, so the student must use the teacher's tokenizer; build it from "
            "model.preset or model.config_overrides"
        )
    limit = max_positions(config)
    if limit is not None and cfg.data.block_size > limit:
        raise ConfigError(
            f"data.block_size {cfg.data.block_size} is above the student's {limit} positions; "
            "lower data.block_size"
        )
    return model_cfg


def first_metric(out: Path, key: str) -> float | None:
    first = [r for r in read_metrics(out / METRICS_FILE) if r["step"] == 0 and key in r]
    return first[0][key] if first else None


def card_info(
    cfg: DistillConfig, student, teacher: LoadedModel, result, before, precision: str
) -> CardInfo:
    d = cfg.distill
    return CardInfo(
        title=Path(cfg.output_dir).name,
        summary=f"A student distilled with llmkit from {cfg.teacher}.",
        base_model=cfg.teacher,
        datasets=[cfg.data.dataset_name] if cfg.data.dataset_name else cfg.data.train_files,
        method=(
            f"distillation: {d.alpha} * T^2 * KL(teacher || student) at T = {d.temperature} "
            f"+ {1 - d.alpha:g} * cross-entropy; teacher "
            + (f"top-{d.cache_topk} log-probs cached" if d.cache_topk else "on the fly")
        ),
        parameters=count_parameters(student),
        architecture=describe(student.config),
        training=training_facts(
            cfg.train, result.tokens_seen, {"block size": cfg.data.block_size}, precision
        )
        | {
            "teacher": f"{cfg.teacher} ({teacher.fingerprint})",
            "alpha": d.alpha,
            "T": d.temperature,
        },
        results={
            "held-out KL(teacher || student), untrained": before
            if before is not None
            else float("nan"),
            "held-out KL(teacher || student)": result.eval_metrics.get("val_kl", float("nan")),
            "validation perplexity": result.eval_metrics.get("val_ppl", float("nan")),
        },
        command=" ".join(["llmkit", *sys.argv[1:]]) if sys.argv[0].endswith("llmkit") else "",
    )
