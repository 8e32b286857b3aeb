"""Command line: parse arguments into a config, call a pipeline, turn user errors into one line.

Every config field is an option named by its dotted path (``--train.learning_rate 1e-3``);
precedence is defaults < ``--recipe`` YAML < options.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import itertools
import logging
import os
import sys
from typing import Any

from llmkit import config as config_lib
from llmkit.errors import LlmkitError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 like every other input error."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def add_config_options(
    parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: frozenset = frozenset()
) -> None:
    repeatable = getattr(cls, "cli_repeatable", ())
    for name, (f, tp) in config_lib.fields_of(cls).items():
        dotted = f"{prefix}{name}"
        if dotted in skip:
            continue
        if config_lib.is_section(tp):
            add_config_options(parser, tp, f"{dotted}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs: dict[str, Any] = dict(dest=dotted, default=argparse.SUPPRESS)
        if tp is bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif name in repeatable:  # one value per option: values may hold commas
            kwargs.update(action="append", metavar=_metavar(tp.__args__[0]))
        else:
            kwargs.update(metavar=_metavar(tp))
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(
            f"--{dotted}", help=f"{f.metadata.get('help', '')} (default: {default!r})", **kwargs
        )


def _metavar(tp: Any) -> str:
    text = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return {"str": "STR", "int": "INT", "float": "FLOAT"}.get(text, text.upper())


def config_command(
    sub: argparse._SubParsersAction, name: str, cls: type, help: str, run: str
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name, help=help, description=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--recipe", help="YAML recipe; options below override its values")
    if any(f.name == "train" for f in dataclasses.fields(cls)):
        parser.add_argument(
            "--resume",
            action="store_true",
            help="continue from the newest checkpoint (train.resume=auto)",
        )
    add_config_options(parser, cls)
    add_aliases(parser, cls)
    parser.set_defaults(config_cls=cls, run=run)
    return parser


def add_aliases(parser: argparse.ArgumentParser, cls: type) -> None:
    """Short options a config declares as ``cli_aliases = {"task": "task.name", ...}``."""
    for short, dotted in getattr(cls, "cli_aliases", {}).items():
        kwargs: dict[str, Any] = dict(metavar=dotted.rsplit(".", 1)[-1].upper())
        if _field_type(cls, dotted) is bool:  # a flag: --fit-only means --fit_only true
            kwargs = dict(nargs="?", const="true", metavar="BOOL")
        parser.add_argument(
            f"--{short}",
            dest=dotted,
            default=argparse.SUPPRESS,
            help=f"short for --{dotted}",
            **kwargs,
        )


def _field_type(cls: type, dotted: str) -> Any:
    tp: Any = cls
    for name in dotted.split("."):
        tp = config_lib.fields_of(tp)[name][1]
    return tp


def add_task_options(parser: argparse.ArgumentParser, cls: type, argv: list[str]) -> None:
    """The chosen task's own options as ``--task.options.NAME``, so ``--help`` lists them.

    The task is the one named by ``--task``/``--task.name``, else by the ``--recipe``, else
    the config's default; an unknown name adds nothing here and fails as one line later.
    """
    section = config_lib.fields_of(cls).get("task")
    if section is None:
        return
    name = _named_task(argv) or section[1]().name
    if name is None:
        return
    from llmkit.tasks import get_task

    try:
        task = get_task(name)
    except LlmkitError:
        return
    group = parser.add_argument_group(f"options of task {task.name}")
    add_config_options(group, task.Options, "task.options.")


def _named_task(argv: list[str]) -> str | None:
    """The task named on the command line, or in the ``--recipe`` it names."""
    recipe = None
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        if flag in ("--task", "--task.name") and value:
            return value
        if flag == "--recipe" and value:
            recipe = value
    if recipe is None:
        return None
    try:
        values = config_lib.load_recipe(recipe)
    except LlmkitError:
        return None  # the recipe's own error comes when the config is built
    task = values.get("task")
    return str(task["name"]) if isinstance(task, dict) and task.get("name") else None


def add_trial_options(parser: argparse.ArgumentParser, cls: type, argv: list[str]) -> None:
    """A command that runs another command's config (``tune`` runs trials of ``pretrain`` or
    ``finetune``) takes its options as they are, except those it has itself."""
    hook = getattr(cls, "cli_trial_config", None)
    trial = hook(argv) if hook else None
    if trial is None:
        return
    own = frozenset(config_lib.fields_of(cls))
    add_config_options(parser.add_argument_group("options of every trial"), trial, "", own)
    add_aliases(parser, trial)
    add_task_options(parser, trial, argv)


def add_plain_commands(sub: argparse._SubParsersAction) -> None:
    """Commands with their own arguments instead of a config: ``tasks``, ``merge``, ``push``,
    ``export``, ``quantize``."""
    tasks = sub.add_parser("tasks", help="list the fine-tuning tasks, their columns and metrics")
    tasks.set_defaults(run="llmkit.tasks:print_tasks")
    merge = sub.add_parser(
        "merge",
        help="merge a LoRA adapter into its base model",
        description="merge a LoRA adapter into its base model: a standalone model folder",
    )
    merge.add_argument("adapter_dir", help="output_dir of a `llmkit finetune --peft lora` run")
    merge.add_argument("--out", required=True, help="folder for the merged model")
    merge.add_argument("--overwrite", action="store_true", help="replace an earlier merge")
    merge.add_argument(
        "--trust_remote_code", action="store_true", help="allow model code from the Hub"
    )
    merge.set_defaults(run="llmkit.pipelines.merge:from_args")
    add_push_command(sub)
    add_export_commands(sub)


def add_push_command(sub: argparse._SubParsersAction) -> None:
    push = sub.add_parser(
        "push",
        help="publish a run folder on the Hugging Face Hub (private unless --public)",
        description="publish a run folder on the Hub: checked to load, allow-listed files, "
        "scanned for tokens, with a card carrying its own evaluation. The repo is created "
        "PRIVATE unless --public. Token: HF_TOKEN or `hf auth login`; endpoint: HF_ENDPOINT.",
    )
    push.add_argument("run_dir", help="output_dir of a pretrain or finetune run")
    push.add_argument("--repo-id", required=True, help="the Hub model repo, NAMESPACE/NAME")
    push.add_argument("--revision", default="main", help="branch to push to (made if missing)")
    push.add_argument("--commit-message", default=None, help="default: Upload RUN with llmkit")
    push.add_argument(
        "--public",
        action="store_true",
        help="create a public repo (default: private; an existing repo keeps its visibility)",
    )
    push.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of committing"
    )
    push.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also push files matching PATTERN (a glob or folder, e.g. predictions.jsonl)",
    )
    push.add_argument("--license", default=None, help="license id (default: the base model's)")
    push.add_argument(
        "--dry-run", action="store_true", help="print the files, what is left out and the card"
    )
    push.set_defaults(run="llmkit.pipelines.push:from_args")


def add_export_commands(sub: argparse._SubParsersAction) -> None:
    """``llmkit export`` (GGUF for llama.cpp/Ollama) and ``llmkit quantize`` (int8 on CPU)."""
    run_dir = "a model folder, a `llmkit finetune --peft lora` run (merged first) or a Hub name"
    export = sub.add_parser(
        "export",
        help="write a model as a GGUF file for llama.cpp/Ollama, checked against the original",
        description="write a GGUF file (and an Ollama Modelfile), load it back and compare",
    )
    export.add_argument("run_dir", help=run_dir)
    export.add_argument("--format", default="gguf", help="output format (gguf)")
    export.add_argument("--dtype", default="f16", help="f32, f16, bf16 or q8_0 (default: f16)")
    export.add_argument("--out", required=True, help="the file to write, FILE.gguf")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export.add_argument(
        "--trust_remote_code", action="store_true", help="allow model code from the Hub"
    )
    export.set_defaults(run="llmkit.pipelines.export:from_args")
    quantize = sub.add_parser(
        "quantize",
        help="quantize a model to int8 for CPU inference (torchao), checked against the original",
        description="int8 model folder through torchao that loads with from_pretrained",
    )
    quantize.add_argument("run_dir", help=run_dir)
    quantize.add_argument(
        "--method", default="int8-dynamic", help="int8-dynamic or int8-weight (default: dynamic)"
    )
    quantize.add_argument("--out", required=True, help="folder for the quantized model")
    quantize.add_argument("--overwrite", action="store_true", help="replace an earlier output")
    quantize.add_argument(
        "--data", nargs="+", default=None, help="text files/folder: perplexity before and after"
    )
    quantize.add_argument(
        "--keep_head_float",
        action="store_true",
        help="leave the output head in float (default: int8 too, unless tied to the embeddings)",
    )
    quantize.add_argument("--split", default="validation", help="split of --data to score")
    quantize.add_argument("--text_column", default="text", help="text column of tabular --data")
    quantize.add_argument(
        "--trust_remote_code", action="store_true", help="allow model code from the Hub"
    )
    quantize.set_defaults(run="llmkit.pipelines.quantize:from_args")


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """``llmkit data prepare`` (config-driven), ``data inspect PATH`` and ``data merge``."""
    data = sub.add_parser("data", help="prepare (clean, dedup, split, pack) or inspect data")
    data_sub = data.add_subparsers(
        dest="command",
        metavar="{prepare,inspect,merge}",
        required=True,
        parser_class=OneLineParser,
    )
    config_command(
        data_sub,
        "prepare",
        _load("llmkit.config.data:DataPrepareConfig"),
        "clean, deduplicate, split, decontaminate, tokenize and pack a corpus",
        "llmkit.pipelines.data:run",
    )
    inspect = data_sub.add_parser(
        "inspect",
        help="rows, tokens, length histogram, samples and duplicates of a dataset",
        description="inspect a prepared dataset folder or raw data files",
    )
    inspect.add_argument("path", help="a `llmkit data prepare` folder, or data files/folder/glob")
    inspect.add_argument("--text_column", default="text", help="text column of tabular files")
    inspect.add_argument("--samples", type=int, default=3, help="how many samples to print")
    inspect.add_argument(
        "--plot", default=None, help="histogram PNG (default: PATH/lengths.png, ./NAME.lengths.png)"
    )
    inspect.add_argument("--tokenizer", default=None, help="count raw files' tokens with this")
    inspect.add_argument("--seed", type=int, default=0, help="seed of the sample choice")
    inspect.set_defaults(run="llmkit.data.inspect:from_args")
    merge = data_sub.add_parser(
        "merge",
        help="merge folders prepared shard by shard into one dataset",
        description="concatenate `llmkit data prepare` folders (same settings and tokenizer)",
    )
    merge.add_argument("out", help="folder for the merged dataset")
    merge.add_argument("shards", nargs="+", help="the prepared shard folders, in order")
    merge.add_argument("--overwrite", action="store_true", help="replace an earlier merge")
    merge.set_defaults(run="llmkit.data.merge:from_args")


def add_inspect_commands(sub: argparse._SubParsersAction) -> None:
    """``llmkit inspect attention`` (maps and a page) and ``inspect heads`` (head scores)."""
    inspect = sub.add_parser("inspect", help="look inside a model: attention maps, head scores")
    inspect_sub = inspect.add_subparsers(
        dest="what", metavar="{attention,heads}", required=True, parser_class=OneLineParser
    )
    attention = inspect_sub.add_parser(
        "attention",
        help="attention maps of a text (PNG grid, large maps, an offline HTML page)",
        description="run a text through the model with eager attention; draw every head",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    attention.add_argument("--text", help="the text to inspect")
    attention.add_argument("--file", help="a UTF-8 text file to inspect instead")
    attention.add_argument("--task", help="take a task example's prompt (e.g. qa; needs --data)")
    attention.add_argument("--data", help="the task's data files or Hub dataset")
    attention.add_argument("--split", default="test", help="the split --index counts in")
    attention.add_argument("--index", type=int, default=0, help="which task example")
    attention.add_argument(
        "--layer", type=int, action="append", help="a large map of this layer (repeatable)"
    )
    attention.add_argument(
        "--head", type=int, action="append", help="a large map of this head (repeatable)"
    )
    attention.add_argument("--compare", help="a second model (e.g. fine-tuned): side by side")
    attention.add_argument("--output_dir", default="runs/inspect", help="where files go")
    heads = inspect_sub.add_parser(
        "heads",
        help="previous-token, induction and entropy of every head; in-context copying",
        description="score every head on repeated random token sequences",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    heads.add_argument("--seq_len", type=int, default=50, help="random tokens per copy")
    heads.add_argument("--batch", type=int, default=16, help="how many random sequences")
    heads.add_argument("--seed", type=int, default=0, help="seed of the random tokens")
    heads.add_argument("--output_dir", default="runs/inspect-heads", help="where files go")
    for parser in (attention, heads):
        parser.add_argument("--model", required=True, help="a model folder or Hub name")
        parser.add_argument("--overwrite", action="store_true", help="replace earlier output")
        parser.add_argument(
            "--trust_remote_code", action="store_true", help="allow model code from the Hub"
        )
        parser.set_defaults(run="llmkit.pipelines.inspect:from_args")


# Config-driven commands: (name, help, "module:ConfigClass", "module:function").
# A pipeline adds one row here; its options come from the config class.
COMMANDS = [
    (
        "pretrain",
        "pretrain a causal language model",
        "llmkit.config.pretrain:PretrainConfig",
        "llmkit.pipelines.pretrain:run",
    ),
    (
        "evaluate",
        "evaluate a model: perplexity on plain text, or a task's metrics on its predictions",
        "llmkit.config.evaluate:EvaluateConfig",
        "llmkit.pipelines.evaluate:run",
    ),
    (
        "finetune",
        "fine-tune a model on a task (qa, summarization, ...), fully or with LoRA",
        "llmkit.config.finetune:FinetuneConfig",
        "llmkit.pipelines.finetune:run",
    ),
    (
        "generate",
        "generate text from a model: streamed, batched to JSONL, or speculative (draft, lookup)",
        "llmkit.config.generate:GenerateConfig",
        "llmkit.pipelines.generate:run",
    ),
    (
        "distill",
        "train a small student (e.g. a draft model) from a teacher: KL to its logits plus CE",
        "llmkit.config.distill:DistillConfig",
        "llmkit.pipelines.distill:run",
    ),
    (
        "scaling",
        "plan and train a ladder of pretraining runs, fit the scaling law and predict",
        "llmkit.config.scaling:ScalingConfig",
        "llmkit.pipelines.scaling:run",
    ),
    (
        "tune",
        "search hyperparameters of a pretrain or finetune recipe with Optuna (pruning, workers)",
        "llmkit.config.tune:TuneConfig",
        "llmkit.pipelines.tune:run",
    ),
]


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    argv = sys.argv[1:] if argv is None else argv
    parser = OneLineParser(prog="llmkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name, help, config_ref, run_ref in COMMANDS:
        command = config_command(sub, name, _load(config_ref), help, run_ref)
        if argv[:1] == [name]:
            add_task_options(command, _load(config_ref), argv)
            add_trial_options(command, _load(config_ref), argv)
    add_plain_commands(sub)
    add_data_commands(sub)
    add_inspect_commands(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Any:
    overrides = {
        k: v
        for k, v in vars(args).items()
        if k not in ("command", "recipe", "resume", "config_cls", "run")
    }
    if getattr(args, "resume", False):
        overrides["train.resume"] = "auto"
    if hasattr(args.config_cls, "from_cli"):  # a config that reads the command line its way
        return args.config_cls.from_cli(args.recipe, overrides)
    return config_lib.build(args.config_cls, args.recipe, overrides)


def quiet_library_noise() -> None:
    """torchao, once installed, is imported by transformers' model loading and logs its
    missing GPU kernels and a torch pytree deprecation on every run: noise that would break
    the one-line error of a bad input. Real warnings of other libraries still show."""
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    quiet_library_noise()
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        words = list(itertools.takewhile(lambda a: not a.startswith("-"), argv))
        command = " ".join(["llmkit", *words[: 2 if words[:1] == ["data"] else 1]])
        parser.exit(
            2, f"error: unrecognized arguments: {' '.join(unknown)}; see `{command} --help`\n"
        )
    try:
        cfg = config_from_args(args) if "config_cls" in vars(args) else args
        _load(args.run)(cfg)
    except LlmkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
