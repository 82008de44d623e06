"""The text of one JSON string field as a grammar-constrained reply is generated: a structured answer
({"found": ..., "answer": "..."}) streams its answer, not its braces."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode_partial(body: str) -> tuple[str, bool]:
    """(the decoded characters of a JSON string body so far, whether its closing quote has come). An escape cut
    at the end of `body` waits for the next piece."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == '"':
            return "".join(out), True
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            break
        code = body[i + 1]
        if code == "u":
            if i + 6 > len(body):
                break
            try:
                out.append(json.loads(f'"{body[i:i + 6]}"'))  # a lone surrogate half decodes to itself
            except ValueError:
                out.append(body[i:i + 6])
            i += 6
            continue
        out.append(_ESCAPES.get(code, code))
        i += 2
    return "".join(out), False


class FieldStreamer:
    """Feed it the reply's pieces; it passes on the new characters of `field`'s string value as they come, unless
    what precedes the field matches `unless` (`"found": false`: a verdict of not found streams nothing)."""

    def __init__(self, field: str, on_text: Callable[[str], None], *, unless: str | None = None):
        self._opening = re.compile(rf'"{re.escape(field)}"\s*:\s*"')
        self._unless = re.compile(unless) if unless else None
        self._on_text = on_text
        self._buffer = ""
        self._start: int | None = None
        self._sent = 0
        self.done = False

    def feed(self, piece: str) -> None:
        if self.done:
            return
        self._buffer += piece
        if self._start is None:
            match = self._opening.search(self._buffer)
            if match is None:
                return
            if self._unless is not None and self._unless.search(self._buffer[:match.start()]):
                self.done = True
                return
            self._start = match.end()
        text, self.done = decode_partial(self._buffer[self._start:])
        if len(text) > self._sent:
            self._on_text(text[self._sent:])
            self._sent = len(text)
