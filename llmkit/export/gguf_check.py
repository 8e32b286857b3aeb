"""Does the GGUF file compute what the original model computes? Load it back and compare.

transformers' own GGUF reader (``from_pretrained(folder, gguf_file=...)``) rebuilds both the
model and the tokenizer from the file; logits on fixed prompts and the tokenizer's ids are
compared with the original. The metadata (tokens, merges, special ids) is also compared
directly with ``gguf``'s ``GGUFReader``, which covers what the reader might rebuild its own way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from llmkit.export.compare import PROMPTS, compare_logits

#: Largest allowed max |logit difference| / max |logit| per dtype. f32 is exact up to the
#: order of float operations (and is also held to 1e-5 absolute); the others measured on
#: llmkit's tiny and small models were 3-10x below these.
TOLERANCE = {"f32": 1e-6, "f16": 5e-3, "bf16": 3e-2, "q8_0": 3e-2}
F32_ABS = 1e-5


def check_gguf(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path, dtype: str
) -> dict[str, Any]:
    """Numbers of the comparison; ``passed`` says whether every one is within tolerance."""
    metadata = compare_metadata(tokenizer, path, model.config.vocab_size)
    loaded = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    try:
        gguf_tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        tokenizer_note = "rebuilt by transformers' GGUF reader"
    except Exception as e:  # the reader raises ValueError/KeyError/... for what it cannot build
        gguf_tok, tokenizer_note = None, f"transformers cannot read it ({type(e).__name__})"
    ids = [tokenizer(p)["input_ids"] for p in PROMPTS]
    logits = compare_logits(model, loaded, ids)
    same_ids = None if gguf_tok is None else [gguf_tok(p)["input_ids"] for p in PROMPTS] == ids
    ok_logits = logits["max_rel_diff"] <= TOLERANCE[dtype]
    if dtype == "f32":
        ok_logits = ok_logits and logits["max_abs_diff"] <= F32_ABS
    report = {
        "file": path.name,
        "dtype": dtype,
        "prompts": len(PROMPTS),
        **logits,
        "tolerance_rel": TOLERANCE[dtype],
        **({"tolerance_abs": F32_ABS} if dtype == "f32" else {}),
        "tokenizer": tokenizer_note,
        "token_ids_equal": same_ids,
        **metadata,
    }
    report["passed"] = bool(
        ok_logits
        and same_ids is not False
        and all(metadata[k] for k in ("tokens_equal", "merges_equal", "special_ids_equal"))
    )
    return report


def compare_metadata(tokenizer: PreTrainedTokenizerBase, path: Path, vocab_size: int):
    """Tokens, merges and special ids in the file against the original tokenizer."""
    import tempfile

    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def strings(key: str) -> list[str]:
        field = reader.get_field(key)
        return [] if field is None else [str(v) for v in field.contents()]

    def scalar(key: str):
        field = reader.get_field(key)
        return None if field is None else field.contents()

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        model = json.loads((Path(tmp) / "tokenizer.json").read_text())["model"]
    by_id = {i: t for t, i in model["vocab"].items()}
    by_id.update({i: t.content for i, t in tokenizer.added_tokens_decoder.items()})
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    special = {
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "padding": tokenizer.pad_token_id,
    }
    in_file = {k: scalar(f"tokenizer.ggml.{k}_token_id") for k in special}
    return {
        "tokens_equal": strings("tokenizer.ggml.tokens") == tokens,
        "merges_equal": strings("tokenizer.ggml.merges") == merges,
        "special_ids_equal": in_file == special,
        "special_ids": in_file,
        "context_length": scalar("llama.context_length"),
        "chat_template": scalar("tokenizer.chat_template") is not None,
    }


def save_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n")


def format_report(report: dict[str, Any]) -> str:
    ids = {True: "equal", False: "DIFFER", None: "not compared"}[report["token_ids_equal"]]
    meta = all(report[k] for k in ("tokens_equal", "merges_equal", "special_ids_equal"))
    return "\n".join(
        [
            f"check of {report['file']} ({report['dtype']}) against the original, "
            f"{report['prompts']} prompts:",
            f"  logits max |diff|     {report['max_abs_diff']:.3g}",
            f"  logits max rel diff   {report['max_rel_diff']:.3g} "
            f"(tolerance {report['tolerance_rel']:g})",
            f"  top-1 agreement       {report['top1_agreement']:.1%}",
            f"  token ids             {ids} (tokenizer {report['tokenizer']})",
            f"  tokens/merges/specials in the file (GGUFReader): {'equal' if meta else 'DIFFER'}",
            f"  {'PASSED' if report['passed'] else 'FAILED'}",
        ]
    )
