"""A Hugging Face Llama model and its byte-level BPE tokenizer as one GGUF file.

Pure Python through ``gguf`` (llama.cpp's own gguf-py): its tensor-name map, vocabulary
readers, writer and Q8_0 quantizer. No llama.cpp build is needed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from llmkit.errors import LlmkitError

#: model_type -> GGUF architecture whose tensor layout transformers' Llama classes share
#: (llama.cpp converts Mistral as "llama" too)
ARCHITECTURES = {"llama": "llama", "mistral": "llama"}
DTYPES = ("f32", "f16", "bf16", "q8_0")
#: Llama 3's split regex (its tokenizer.json), which llama.cpp calls "llama-bpe"
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _gguf():
    try:
        import gguf
    except ImportError:
        raise LlmkitError(
            "export --format gguf needs the gguf package: pip install 'llmkit[export]'"
        ) from None
    return gguf


def check_exportable(model_type: str, dtype: str) -> None:
    """Refuse what the writer cannot write, before any weights are loaded."""
    if model_type not in ARCHITECTURES:
        raise LlmkitError(
            f"export --format gguf: model_type {model_type!r} is not supported; supported: "
            f"{', '.join(ARCHITECTURES)} (the architecture of llmkit's presets)"
        )
    if dtype not in DTYPES:
        raise LlmkitError(f"export --dtype {dtype!r}: choose one of {', '.join(DTYPES)}")


def write_gguf(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path, dtype: str, name: str
) -> None:
    """Write ``model`` (weights in ``dtype``) and ``tokenizer`` to ``path``."""
    gguf = _gguf()
    cfg = model.config
    check_exportable(cfg.model_type, dtype)
    writer = gguf.GGUFWriter(str(path), ARCHITECTURES[cfg.model_type])
    _add_hparams(writer, cfg, dtype, name)
    _add_tokenizer(writer, tokenizer, cfg.vocab_size)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    state = model.state_dict()
    if "lm_head.weight" not in state:  # tied weights: llama.cpp also accepts a separate output
        state["lm_head.weight"] = model.get_output_embeddings().weight
    for hf_name, tensor in state.items():
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise LlmkitError(
                f"export: no GGUF name for tensor {hf_name}; cannot export this model"
            )
        data, raw = _tensor_data(gguf, _llama_layout(hf_name, tensor, cfg), dtype)
        writer.add_tensor(gguf_name, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _add_hparams(writer, cfg, dtype: str, name: str) -> None:
    gguf = _gguf()
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise LlmkitError(
            f"export: rope_type {rope['rope_type']!r} is not supported; only default RoPE"
        )
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_name(name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads or cfg.num_attention_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    writer.add_rope_dimension_count(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    file_types = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }
    writer.add_file_type(file_types[dtype])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tokenizer(writer, tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> None:
    """Tokens, types, merges, special ids, add-BOS flag and chat template, read by gguf-py's
    own vocabulary classes from the tokenizer as saved (so a Hub tokenizer works the same)."""
    gguf = _gguf()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        spec = json.loads((Path(tmp) / "tokenizer.json").read_text())
        try:
            vocab = gguf.vocab.BpeVocab(Path(tmp))
        except (FileNotFoundError, ValueError):
            raise LlmkitError(
                "export --format gguf: the tokenizer is not a byte-level BPE tokenizer.json; "
                "only byte-level BPE (llmkit's own, GPT-2/Llama-3 style) is supported"
            ) from None
        special = gguf.SpecialVocab(Path(tmp), load_merges=True, n_vocab=vocab_size)
    tokens = [text for text, _, _ in vocab.all_tokens()]
    # BpeVocab calls every token in the BPE vocabulary NORMAL, llmkit's specials included;
    # llama.cpp needs them CONTROL to keep them whole and hide them in output.
    control = {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    types = [
        gguf.TokenType.CONTROL if _text(t) in control else gguf.TokenType.NORMAL for t in tokens
    ]
    if len(tokens) > vocab_size:
        raise LlmkitError(
            f"export: the tokenizer has {len(tokens)} tokens but the model only {vocab_size} "
            "embeddings; resize the model's embeddings"
        )
    for i in range(len(tokens), vocab_size):  # llama.cpp's padding for a larger embedding
        tokens.append(f"[PAD{i}]".encode())
        types.append(gguf.TokenType.UNUSED)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(spec.get("pre_tokenizer") or {}))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    ids = tokenizer("a")["input_ids"]
    special.add_special_token = {
        "bos": tokenizer.bos_token_id is not None and ids[:1] == [tokenizer.bos_token_id],
        "eos": tokenizer.eos_token_id is not None and ids[-1:] == [tokenizer.eos_token_id],
    }
    if getattr(tokenizer, "chat_template", None):
        special.chat_template = tokenizer.chat_template
    special.add_to_gguf(writer, quiet=True)


def _text(token: bytes | str) -> str:
    return token.decode("utf-8") if isinstance(token, bytes) else token


def _pre_tokenizer(pre: dict) -> str:
    """llama.cpp's name for how the text is split before BPE (it knows splits by name only)."""
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"  # llmkit's own tokenizers: GPT-2's regex inside ByteLevel
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else []
    if any(s.get("pattern", {}).get("Regex") == _LLAMA3_SPLIT for s in steps):
        return "llama-bpe"
    raise LlmkitError(
        f"export --format gguf: pre-tokenizer {json.dumps(pre)[:120]} has no llama.cpp name; "
        "supported: GPT-2 byte-level (llmkit's tokenizers) and Llama 3's split"
    )


def _llama_layout(hf_name: str, tensor: torch.Tensor, cfg) -> np.ndarray:
    """Float32 numpy; Q and K rows reordered the way llama.cpp's converter does.

    transformers rotates halves of each head (rotate_half); llama.cpp rotates adjacent pairs,
    so convert_hf_to_gguf.py permutes these rows (LlamaModel.permute, not part of gguf-py)
    and transformers' GGUF reader undoes it on load.
    """
    data = tensor.detach().to(torch.float32).cpu().numpy()
    heads = None
    if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
        heads = cfg.num_attention_heads
    elif hf_name.endswith(("k_proj.weight", "k_proj.bias")):
        heads = cfg.num_key_value_heads or cfg.num_attention_heads
    if heads is None:
        return data
    shape = data.shape
    return data.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _tensor_data(gguf, data: np.ndarray, dtype: str):
    """The array to store and its GGML type. Norms and other 1-D tensors stay F32 as in
    llama.cpp's converter; Q8_0 needs rows that are whole 32-value blocks."""
    types = gguf.GGMLQuantizationType
    if data.ndim == 1 or dtype == "f32":
        return data, types.F32
    if dtype == "f16":
        return data.astype(np.float16), types.F16
    qtype = types.BF16 if dtype == "bf16" else types.Q8_0
    if qtype == types.Q8_0 and data.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
        return data.astype(np.float16), types.F16
    return gguf.quants.quantize(data, qtype), qtype
