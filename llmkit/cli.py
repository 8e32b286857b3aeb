"""Command line: parse arguments into a config, call a pipeline, turn user errors into one line.

Every config field is an option named by its dotted path (``--train.learning_rate 1e-3``);
precedence is defaults < ``--recipe`` YAML < options.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from typing import Any

from llmkit import config as config_lib
from llmkit.errors import LlmkitError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 like every other input error."""

    def error(self, message: str) -> None:
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def add_config_options(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    for name, (f, tp) in config_lib.fields_of(cls).items():
        dotted = f"{prefix}{name}"
        if config_lib.is_section(tp):
            add_config_options(parser, tp, f"{dotted}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kwargs: dict[str, Any] = dict(dest=dotted, default=argparse.SUPPRESS)
        if tp is bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
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
    parser.set_defaults(config_cls=cls, run=run)
    return parser


# Config-driven commands: (name, help, "module:ConfigClass", "module:function").
# A pipeline adds one row here; its options come from the config class.
COMMANDS = [
    (
        "pretrain",
        "pretrain a causal language model",
        "llmkit.config.pretrain:PretrainConfig",
        "llmkit.pipelines.pretrain:run",
    ),
]


def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="llmkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name, help, config_ref, run_ref in COMMANDS:
        config_command(sub, name, _load(config_ref), help, run_ref)
    return parser


def config_from_args(args: argparse.Namespace) -> Any:
    overrides = {
        k: v
        for k, v in vars(args).items()
        if k not in ("command", "recipe", "resume", "config_cls", "run")
    }
    if getattr(args, "resume", False):
        overrides["train.resume"] = "auto"
    return config_lib.build(args.config_cls, args.recipe, overrides)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
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
