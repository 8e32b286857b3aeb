"""Causal-LM pretraining: the steps a user would describe, in order."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from llmkit import config as config_lib
from llmkit.cards import CardInfo, training_facts, write_card
from llmkit.config import PretrainConfig
from llmkit.data.pack import BlockDataset
from llmkit.data.prepare import prepare_data
from llmkit.errors import ConfigError
from llmkit.inspect.heads import copy_metric
from llmkit.models.load import (
    build_model,
    count_parameters,
    describe,
    max_positions,
    resolve_config,
)
from llmkit.outputs import check_output_dir, greedy_sample, save_model, start_output_dir
from llmkit.pipelines.push import push_run
from llmkit.training.logging import METRICS_FILE, plot_losses
from llmkit.training.loop import (
    OnEvaluate,
    TrainResult,
    make_accelerator,
    process_state,
    tokens_per_step,
    train,
)
from llmkit.training.precision import Settled, settle, step_flops
from llmkit.training.validation import validation_loss


@dataclass
class PretrainResult:
    output_dir: Path
    train: TrainResult
    initial_val_ppl: float | None
    sample: str


def run(cfg: PretrainConfig, on_evaluate: OnEvaluate | None = None) -> PretrainResult:
    """``on_evaluate(step, metrics)`` sees each validation pass (`llmkit tune` prunes there)."""
    cfg.validate()
    resuming = cfg.train.resume != "no"
    out = check_output_dir(cfg.output_dir, cfg.overwrite, resuming)
    check_block_size(cfg)

    state = process_state()
    with state.main_process_first():
        data = prepare_data(
            cfg.data,
            cfg.tokenizer,
            trust_remote_code=cfg.model.trust_remote_code,
            show_progress=state.is_local_main_process,
        )
    train_set = BlockDataset(data.splits["train"])
    val_set = BlockDataset(data.splits["validation"])
    model = build_model(cfg.model, data.tokenizer, seed=cfg.train.seed)
    settled = settle(
        cfg.train,
        flops_per_step=step_flops(model, tokens_per_step(cfg.train, cfg.data.block_size)),
        model=model,
        sequence_length=cfg.data.block_size,
    )
    cfg = replace(cfg, train=settled.train)
    accelerator = make_accelerator(cfg.train)
    accelerator.print(
        f"model: {count_parameters(model):,} parameters; data: {len(train_set):,} train and "
        f"{len(val_set):,} validation blocks of {cfg.data.block_size} tokens"
        f"{' (cached)' if data.cached else ''}; world size {accelerator.num_processes}\n"
        + settled.describe()
    )

    start_output_dir(out, cfg.overwrite, resuming, accelerator)
    if accelerator.is_main_process:
        config_lib.save(cfg, out)

    def evaluate(m):
        metrics = validation_loss(
            m,
            val_set,
            accelerator,
            batch_size=cfg.train.per_device_eval_batch_size,
            max_batches=cfg.train.eval_max_batches,
        )
        if cfg.train.log_copy_score is not False:  # on unless switched off
            metrics |= copy_metric(m, data.tokenizer, cfg.data.block_size)
        return metrics

    result = train(
        model,
        train_set,
        cfg.train,
        out,
        accelerator,
        evaluate=evaluate,
        desc="pretrain",
        on_evaluate=on_evaluate,
        compile_key=settled.compile_key,
    )
    save_model(accelerator, model, data.tokenizer, out)

    model = accelerator.unwrap_model(model)
    sample = greedy_sample(model, data.tokenizer, cfg.sample_prompt)
    initial = initial_val_ppl(out)
    if accelerator.is_main_process:
        plot_losses(out / METRICS_FILE, out / "loss.png", title=f"pretraining {out.name}")
        write_card(out, card_info(cfg, model, result, data.manifest, settled))
    final_ppl = result.eval_metrics.get("val_ppl", float("nan"))
    accelerator.print(
        f"\nvalidation perplexity: {final_ppl:.2f}"
        + (f" (untrained: {initial:,.0f}, {initial / final_ppl:,.0f}x lower)" if initial else "")
        + f"\ntokens/s: {result.tokens_per_second:,.0f}"
        + f"\nsaved to: {out}\nsample: {sample!r}"
    )
    if accelerator.is_main_process:
        push_run(out, cfg.hub)
    return PretrainResult(out, result, initial, sample)


def check_block_size(cfg: PretrainConfig) -> None:
    limit = max_positions(resolve_config(cfg.model, cfg.tokenizer.vocab_size))
    if limit is not None and cfg.data.block_size > limit:
        raise ConfigError(
            f"data.block_size {cfg.data.block_size} is above the model's {limit} positions; "
            f"lower data.block_size or raise model.config_overrides.max_position_embeddings"
        )


def initial_val_ppl(out: Path) -> float | None:
    from llmkit.training.logging import read_metrics

    first = [r for r in read_metrics(out / METRICS_FILE) if r["step"] == 0 and "val_ppl" in r]
    return first[0]["val_ppl"] if first else None


def card_info(
    cfg: PretrainConfig, model, result: TrainResult, manifest: dict, settled: Settled
) -> CardInfo:
    t = cfg.train
    sources = [cfg.data.dataset_name] if cfg.data.dataset_name else cfg.data.train_files
    return CardInfo(
        title=f"{Path(cfg.output_dir).name}",
        summary="A causal language model pretrained with llmkit.",
        base_model=cfg.model.name_or_path,
        datasets=sources,
        method="causal-LM pretraining"
        + (f" continued from {cfg.model.name_or_path}" if cfg.model.name_or_path else ""),
        parameters=count_parameters(model),
        architecture=describe(model.config),
        training=training_facts(
            t, result.tokens_seen, {"block size": cfg.data.block_size}, settled.precision
        )
        | {"tokenizer": manifest.get("tokenizer", "")},
        results={
            "validation loss": result.eval_metrics.get("val_loss", float("nan")),
            "validation perplexity": result.eval_metrics.get("val_ppl", float("nan")),
        },
        command=" ".join(["llmkit", *sys.argv[1:]]) if sys.argv[0].endswith("llmkit") else "",
    )
