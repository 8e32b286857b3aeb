"""One prompt, printed token by token as it is generated (``TextIteratorStreamer``).

generate runs in a thread and the caller's thread prints; text that may be the start of a stop
string is held back until it is clear, so the printed text equals the saved completion.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from transformers import PreTrainedModel, PreTrainedTokenizerBase, TextIteratorStreamer

from llmkit.generation.batched import Generation, generate_records


def stream_generation(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    *,
    max_new_tokens: int,
    stop_strings: list[str] | None = None,
    out: TextIO | None = None,
    **kwargs: Any,
) -> Generation:
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["records"] = generate_records(
                model,
                tokenizer,
                [prompt],
                max_new_tokens=max_new_tokens,
                batch_size=1,
                stop_strings=stop_strings,
                inner_streamer=streamer,
                **kwargs,
            )
        except BaseException as e:  # re-raised in the caller's thread
            result["error"] = e
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    printer = StopPrinter(out or sys.stdout, [s for s in stop_strings or [] if s])
    for piece in streamer:
        printer.write(piece)
    thread.join()
    if "error" in result:
        raise result["error"]
    printer.close()
    return result["records"][0]


class StopPrinter:
    """Prints streamed text up to the first stop string, leading whitespace trimmed."""

    def __init__(self, out: TextIO, stops: list[str]):
        self.out, self.stops = out, stops
        self.text, self.printed, self.stopped = "", 0, False
        self.hold = max((len(s) for s in stops), default=1) - 1

    def write(self, piece: str) -> None:
        if self.stopped:
            return
        self.text += piece
        if not self.printed:
            self.text = self.text.lstrip()
        hits = [h for h in (self.text.find(s) for s in self.stops) if h >= 0]
        if hits:
            self._emit(min(hits))
            self.stopped = True
        else:
            self._emit(len(self.text) - self.hold)

    def close(self) -> None:
        if not self.stopped:
            self._emit(len(self.text))
        self.out.write("\n")
        self.out.flush()

    def _emit(self, upto: int) -> None:
        if upto > self.printed:
            self.out.write(self.text[self.printed : upto])
            self.out.flush()
            self.printed = upto
