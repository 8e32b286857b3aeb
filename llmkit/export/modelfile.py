"""An Ollama ``Modelfile`` beside a GGUF file, its TEMPLATE derived from the chat template.

Ollama's templates are Go templates and Hugging Face's are Jinja, so the chat template cannot
be translated in general. Instead it is rendered with marker strings for the system prompt and
the user message, and the text around the markers becomes the Go template: exact for
single-turn prompts (what ``ollama run`` sends), which is what most chat templates reduce to.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

_SYSTEM, _USER = "\x00SYSTEM\x00", "\x00USER\x00"


def modelfile_text(gguf_name: str, tokenizer: PreTrainedTokenizerBase, context_length: int) -> str:
    lines = [f"FROM ./{gguf_name}", "", f'TEMPLATE """{go_template(tokenizer)}"""', ""]
    lines.append(f"PARAMETER num_ctx {context_length}")
    if tokenizer.eos_token:
        lines.append(f'PARAMETER stop "{tokenizer.eos_token}"')
    return "\n".join(lines) + "\n"


def go_template(tokenizer: PreTrainedTokenizerBase) -> str:
    """The chat template as Ollama's single-turn Go template; plain completion without one."""
    if not getattr(tokenizer, "chat_template", None):
        return "{{ .Prompt }}"
    user_only = _render(tokenizer, [{"role": "user", "content": _USER}])
    before_user, after_user = user_only.split(_USER, 1)
    template = ""
    try:
        with_system = _render(
            tokenizer, [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER}]
        )
    except Exception:  # a template that refuses a system message (raise_exception in Jinja)
        with_system = None
    if with_system and _SYSTEM in with_system and with_system.endswith(_USER + after_user):
        system_part = with_system[: -len(_USER + after_user)].replace(_SYSTEM, "{{ .System }}")
        template = f"{{{{ if .System }}}}{system_part}{{{{ else }}}}{before_user}{{{{ end }}}}"
    else:
        template = before_user
    return f"{template}{{{{ .Prompt }}}}{after_user}{{{{ .Response }}}}"


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    # A BOS the tokenizer adds itself is added by llama.cpp too (add_bos_token in the file).
    bos, adds_bos = tokenizer.bos_token, tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
    return text[len(bos) :] if adds_bos and bos and text.startswith(bos) else text
