"""Task fine-tuning, full or LoRA: the steps a user would describe, in order.

Read the task's data, load the base model (and wrap it with LoRA), encode the examples with
the loss on the target only, score the base model on the test split, train with the one
training loop (validating with generated answers along the way), save the model or adapter,
score it again and report both.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from llmkit import config as config_lib
from llmkit.cards import CardInfo, training_facts, write_card
from llmkit.config.finetune import FinetuneConfig
from llmkit.data.tokenizer import load_tokenizer
from llmkit.errors import ConfigError
from llmkit.evaluation.load import fingerprint
from llmkit.evaluation.metrics import METRICS, scored_names
from llmkit.evaluation.report import (
    build_report,
    card_eval_results,
    metric_config,
    write_predictions,
)
from llmkit.evaluation.report import write_results as write_eval_results
from llmkit.evaluation.task_eval import evaluate_task, generation_settings, headline_scores
from llmkit.inspect.heads import copy_metric
from llmkit.models.load import count_parameters, describe, max_positions
from llmkit.models.peft import apply_lora, check_method, load_base_model, trainable_parameters
from llmkit.outputs import check_output_dir, save_model, start_output_dir
from llmkit.pipelines.push import push_run
from llmkit.tasks import Task, get_task
from llmkit.tasks.data import load_task_splits
from llmkit.tasks.encode import (
    EncodedDataset,
    PadCollate,
    encode_records,
    fit_records,
    pad_id,
)
from llmkit.training.logging import METRICS_FILE, plot_losses
from llmkit.training.loop import OnEvaluate, TrainResult, make_accelerator, tokens_per_step, train
from llmkit.training.precision import Settled, settle, step_flops
from llmkit.training.validation import Validator

RESULTS_FILE = "finetune_results.json"


@dataclass
class FinetuneResult:
    output_dir: Path
    train: TrainResult
    before: dict[str, float]  # the base model on the test split ({} when not run)
    after: dict[str, float]  # the fine-tuned model on the test split
    data: dict[str, dict]  # examples, truncated and dropped per split


def run(cfg: FinetuneConfig, on_evaluate: OnEvaluate | None = None) -> FinetuneResult:
    """``on_evaluate(step, metrics)`` sees each validation pass (`llmkit tune` prunes there)."""
    cfg.validate()
    task = get_task(cfg.task.name, cfg.task.options)
    check_settings(cfg, task)
    resuming = cfg.train.resume != "no"
    out = check_output_dir(cfg.output_dir, cfg.overwrite, resuming)
    splits = load_task_splits(task, cfg.data, cfg.eval.test_files)

    tokenizer = load_tokenizer(cfg.model.name_or_path, cfg.model.trust_remote_code)
    task.setup(tokenizer)
    model = load_base_model(
        cfg.model, cfg.peft.method, tokenizer, cfg.train.seed, cfg.train.progress_bar
    )
    check_max_length(cfg, model)
    if cfg.peft.method != "full":
        model = apply_lora(model, cfg.peft)
    data = encode_splits(cfg, task, tokenizer, splits, prompt_budget(cfg, task, model))
    check_batch(cfg, data.train)
    settled = settle(
        cfg.train,
        flops_per_step=step_flops(model, tokens_per_step(cfg.train, cfg.task.max_length)),
        model=model,
        sequence_length=cfg.task.max_length,
    )
    cfg = replace(cfg, train=settled.train)
    accelerator = make_accelerator(cfg.train)
    accelerator.print(describe_run(cfg, task, model, data, accelerator.num_processes))
    accelerator.print(settled.describe())

    start_output_dir(out, cfg.overwrite, resuming, accelerator)
    if accelerator.is_main_process:
        config_lib.save(cfg, out)

    before = test_scores(model, tokenizer, task, data.test, cfg, accelerator, "base model")[0]
    validator = Validator(
        encoded=data.validation,
        collate=PadCollate(pad_id(tokenizer)),
        accelerator=accelerator,
        output_dir=out,
        loss_batch_size=cfg.train.per_device_eval_batch_size,
        max_loss_batches=cfg.train.eval_max_batches,
        best_metric=cfg.eval.metric_for_best_model,
        scores=validation_scores(cfg, task, tokenizer, data.validation_sample, accelerator),
    )
    result = train(
        model,
        data.train,
        replace(cfg.train, eval_steps=cfg.eval_every),
        out,
        accelerator,
        collate=PadCollate(pad_id(tokenizer)),
        evaluate=with_copy_score(validator, tokenizer, cfg),
        desc="finetune",
        on_evaluate=on_evaluate,
        compile_key=settled.compile_key,
    )
    best = validator.restore_best(model)
    save_model(accelerator, model, tokenizer, out)

    model = accelerator.unwrap_model(model)
    after, scored = test_scores(model, tokenizer, task, data.test, cfg, accelerator, "fine-tuned")
    if accelerator.is_main_process:
        plot_losses(out / METRICS_FILE, out / "loss.png", title=f"fine-tuning {out.name}")
        report = eval_report(cfg, task, out, model, scored) if scored else None
        if report:
            write_eval_results(out, report)
            write_predictions(out, scored.predictions)
        summary = results_summary(cfg, task, model, data, result, best, before, after)
        (out / RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
        card = card_info(cfg, task, model, result, before, after, report, settled)
        write_card(out, card)
    accelerator.print(before_after_table(before, after, len(data.test)) + f"\nsaved to: {out}")
    if accelerator.is_main_process:
        push_run(out, cfg.hub)
    return FinetuneResult(out, result, before, after, data.report)


def check_settings(cfg: FinetuneConfig, task: Task) -> None:
    """What the config alone cannot check: the method's needs, the task's generation
    settings and the best-model metric, before any data or model is read."""
    check_method(cfg.peft.method)
    for name in cfg.eval.metrics:
        METRICS.get(name)  # an unknown name fails here, not after the base model's test pass
    generation_settings(task, cfg.eval.generation)
    best = cfg.eval.metric_for_best_model
    if best is not None:
        known = scored_names(cfg.eval.metrics or list(task.default_metrics))
        if best.removeprefix("val_") not in known:
            raise ConfigError(
                f"eval.metric_for_best_model {best!r} is not computed; "
                f"choose one of {', '.join(sorted(known))}"
            )


def with_copy_score(validator, tokenizer, cfg: FinetuneConfig):
    """The validator, plus the copy score when train.log_copy_score is true (off by default:
    generation already measures the task)."""
    if not cfg.train.log_copy_score:
        return validator
    return lambda m: validator(m) | copy_metric(m, tokenizer, cfg.task.max_length)


@dataclass
class EncodedSplits:
    train: EncodedDataset
    validation: EncodedDataset
    validation_sample: list[dict]  # records scored by generation during training
    test: list[dict]  # records fitted to the prompt budget
    report: dict[str, dict]  # examples, truncated and dropped per split


def encode_splits(cfg: FinetuneConfig, task: Task, tokenizer, splits, budget: int):
    """Training examples with their loss masks; evaluation records fitted to ``budget``."""
    train_set, train_stats = encode_records(task, tokenizer, splits.train, cfg.task.max_length)
    val_set, val_stats = encode_records(task, tokenizer, splits.validation, cfg.task.max_length)
    sample, _ = fit_records(task, tokenizer, splits.validation[: cfg.eval.max_examples], budget)
    test, test_stats = fit_records(
        task, tokenizer, splits.test[: cfg.eval.test_max_examples], budget
    )
    report = {
        "train": train_stats.as_dict(),
        "validation": val_stats.as_dict() | {"source": splits.validation_source},
        "test": test_stats.as_dict(),
    }
    return EncodedSplits(train_set, val_set, sample, test, report)


def describe_run(
    cfg: FinetuneConfig, task: Task, model, data: EncodedSplits, world_size: int
) -> str:
    trainable, total = trainable_parameters(model)
    lines = [
        f"task {task.name}, {cfg.peft.method} fine-tuning of {cfg.model.name_or_path}: "
        f"{trainable:,} of {total:,} parameters train; world size {world_size}"
    ]
    for split, counts in data.report.items():
        lines.append(
            f"{split}: {counts['examples']:,} examples, {counts['truncated']:,} with a context "
            f"cut to fit {cfg.task.max_length} tokens, {counts['dropped']:,} dropped "
            "(target too long)"
        )
    return "\n".join(lines)


def check_batch(cfg: FinetuneConfig, train_set) -> None:
    """The loop would say so too, but only after the output folder exists."""
    if len(train_set) < cfg.train.per_device_train_batch_size:
        raise ConfigError(
            f"{len(train_set)} training examples is fewer than one batch; add data or lower "
            "train.per_device_train_batch_size"
        )


def check_max_length(cfg: FinetuneConfig, model) -> None:
    limit = max_positions(model.config)
    if limit is not None and cfg.task.max_length > limit:
        raise ConfigError(
            f"task.max_length {cfg.task.max_length} is above the model's {limit} positions; "
            f"use task.max_length <= {limit}"
        )


def prompt_budget(cfg: FinetuneConfig, task: Task, model) -> int:
    """Prompt tokens at evaluation: as in training (``task.max_length``), and leaving room in
    the model's positions for the generated answer."""
    new_tokens = generation_settings(task, cfg.eval.generation)["max_new_tokens"]
    positions = max_positions(model.config) or cfg.task.max_length + new_tokens
    room = min(cfg.task.max_length, positions - new_tokens)
    if room < 1:
        raise ConfigError(
            f"the model's {positions} positions leave no room for a prompt next to "
            f"{new_tokens} generated tokens; lower eval.generation.max_new_tokens"
        )
    return room


def score_task(model, tokenizer, task, records, cfg: FinetuneConfig, accelerator):
    """Greedy answers for ``records`` (already fitted to the prompt budget), scored as
    ``llmkit evaluate`` scores them; the processes share the generation."""
    return evaluate_task(
        accelerator.unwrap_model(model),
        tokenizer,
        task,
        records,
        metrics=cfg.eval.metrics or None,
        batch_size=cfg.eval.batch_size,
        generation=cfg.eval.generation,
        accelerator=accelerator,
    )


def validation_scores(cfg: FinetuneConfig, task: Task, tokenizer, records, accelerator):
    """The task's headline metrics on the validation sample, as ``val_*`` scores of each
    validation pass (None without a sample)."""
    if not records:
        return None
    metrics = cfg.eval.metrics or list(task.default_metrics)

    def scores(model) -> dict[str, float]:
        result = score_task(model, tokenizer, task, records, cfg, accelerator)
        return {f"val_{k}": v for k, v in headline_scores(result, metrics).items()}

    return scores


def test_scores(model, tokenizer, task, test, cfg, accelerator, label):
    """Headline test metrics and the full result; the processes share the generation."""
    if not test or (label == "base model" and not cfg.eval.before_training):
        return {}, None
    result = score_task(model, tokenizer, task, test, cfg, accelerator)
    values = headline_scores(result, cfg.eval.metrics or list(task.default_metrics))
    accelerator.print(f"test, {label}: " + "  ".join(f"{k}={v:.2f}" for k, v in values.items()))
    return values, result


def eval_report(cfg: FinetuneConfig, task: Task, out: Path, model, scored) -> dict:
    """eval_results.json in the format of `llmkit evaluate`, for the card's model-index."""
    metrics = cfg.eval.metrics or list(task.default_metrics)
    return build_report(
        model={
            "name_or_path": str(out),
            "fingerprint": fingerprint(str(out), model),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        task=task.name,
        data=cfg.eval.test_files or data_sources(cfg),
        split="test",
        dataset_config=cfg.data.dataset_config_name,
        scores={m: scored.by_metric[m] for m in metrics},
        configs={m: metric_config(m, scored.by_metric[m], {}) for m in metrics},
        num_examples=scored.num_examples,
        num_tokens=scored.num_prompt_tokens,
        details={"generation": scored.generation, "seconds": scored.seconds},
    )


def results_summary(cfg, task, model, data: EncodedSplits, result, best, before, after) -> dict:
    """finetune_results.json: what was trained on, how, and the scores before and after."""
    return {
        "task": task.name,
        "base_model": cfg.model.name_or_path,
        "method": method_text(cfg),
        "trainable_parameters": trainable_parameters(model)[0],
        "data": data.report,
        "train": {
            "steps": result.step,
            "train_loss": result.train_loss,
            "tokens_per_second": result.tokens_per_second,
            "validation": result.eval_metrics,
        },
        "best": best,
        "test": {"num_examples": len(data.test), "before": before, "after": after},
    }


def data_sources(cfg: FinetuneConfig) -> list[str]:
    return [cfg.data.dataset_name] if cfg.data.dataset_name else list(cfg.data.train_files)


def method_text(cfg: FinetuneConfig) -> str:
    p = cfg.peft
    if p.method == "full":
        return "full fine-tuning"
    targets = ", ".join(p.target_modules) or "the architecture's default layers"
    kind = "QLoRA (4-bit base)" if p.method == "qlora" else "LoRA"
    return f"{kind}, rank {p.r}, alpha {p.alpha:g}, dropout {p.dropout:g}, on {targets}"


def before_after_table(before: dict, after: dict, n: int) -> str:
    if not n:
        return "no test split: set eval.test_files for a before/after report"
    names = list(after or before)
    title = f"test ({n} examples)"
    width = max([len(k) for k in names] + [len(title)])
    lines = [f"{title:<{width}}  {'before':>8}  {'after':>8}"]
    for k in names:
        b = f"{before[k]:8.2f}" if k in before else f"{'-':>8}"
        lines.append(f"{k:<{width}}  {b}  {after.get(k, float('nan')):8.2f}")
    return "\n".join(lines)


def card_info(
    cfg, task, model, result: TrainResult, before, after, report, settled: Settled
) -> CardInfo:
    t = cfg.train
    results = {f"test {k} (fine-tuned)": v for k, v in after.items()}
    results |= {f"test {k} (base model)": v for k, v in before.items()}
    return CardInfo(
        title=Path(cfg.output_dir).name,
        summary=f"{cfg.model.name_or_path} fine-tuned with llmkit on the {task.name} task "
        f"({task.description}).",
        base_model=cfg.model.name_or_path,
        datasets=data_sources(cfg),
        method=method_text(cfg),
        task=task.name,
        parameters=count_parameters(model),
        architecture=describe(model.config),
        training=training_facts(
            t, result.tokens_seen, {"max length": cfg.task.max_length}, settled.precision
        ),
        results=results,
        eval_results=card_eval_results(report) if report else [],
        command=" ".join(["llmkit", *sys.argv[1:]]) if sys.argv[0].endswith("llmkit") else "",
    )
