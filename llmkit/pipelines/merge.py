"""`llmkit merge ADAPTER_DIR --out DIR`: a LoRA run folded into a standalone model.

The merged folder loads with plain ``AutoModelForCausalLM.from_pretrained`` (no peft) and
gives the logits of base model plus adapter.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from llmkit.cards import CardInfo, write_card
from llmkit.config import CONFIG_FILE
from llmkit.data.tokenizer import load_tokenizer
from llmkit.models.load import count_parameters, describe
from llmkit.models.peft import adapter_base, load_adapter_model, merge_adapter
from llmkit.outputs import check_output_dir
from llmkit.permissions import ordinary_modes


def run(adapter_dir: str, out: str, overwrite: bool = False, trust_remote_code: bool = False):
    base = adapter_base(adapter_dir)
    target = check_output_dir(out, overwrite, resuming=False)
    tokenizer = load_tokenizer(adapter_dir)
    model = merge_adapter(load_adapter_model(adapter_dir, tokenizer, trust_remote_code))

    if overwrite and target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    if (Path(adapter_dir) / CONFIG_FILE).is_file():
        shutil.copy(Path(adapter_dir) / CONFIG_FILE, target / CONFIG_FILE)
    write_card(
        target,
        CardInfo(
            title=target.name,
            summary=f"The LoRA adapter {adapter_dir} merged into {base}: a standalone model.",
            base_model=base,
            method=f"LoRA adapter merged into the base weights (from {adapter_dir})",
            parameters=count_parameters(model),
            architecture=describe(model.config),
        ),
    )
    ordinary_modes(target)
    print(f"merged {adapter_dir} into {base}\nsaved to: {target}")
    return target


def from_args(args: argparse.Namespace):
    return run(args.adapter_dir, args.out, args.overwrite, args.trust_remote_code)
