"""The LLM protocol: what the chains need from a model, and nothing more."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import json_repair

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    # prompt tokens the backend did not evaluate again: llama.cpp's KV cache kept the prefix it shares with the
    # previous call; vLLM's prefix cache reports them as usage.prompt_tokens_details.cached_tokens
    cached_tokens: int = 0


@runtime_checkable
class LLM(Protocol):
    name: str

    @property
    def context_window(self) -> int:
        """Read from the model or the server (llama.cpp n_ctx, vLLM max_model_len), never a constant."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def count_messages(self, messages: list[Message]) -> int:
        """Tokens of a whole chat prompt, template included."""
        ...

    def complete(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
                 stop: list[str] | None = None, json_schema: dict | None = None) -> Completion: ...

    def complete_many(self, batch: list[list[Message]], *, max_tokens: int, temperature: float = 0.0,
                      stop: list[str] | None = None, json_schema: dict | None = None) -> list[Completion]:
        """The map step: a server backend sends these concurrently, llama.cpp runs them in turn."""
        ...

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
               stop: list[str] | None = None, json_schema: dict | None = None) -> Iterator[str]: ...

    @property
    def supports_json(self) -> bool: ...


TEMPLATE_OVERHEAD = 8  # tokens a chat template adds per message, when the backend cannot count it exactly


def approx_message_tokens(llm: LLM, messages: list[Message]) -> int:
    return sum(llm.count_tokens(m["content"]) + TEMPLATE_OVERHEAD for m in messages) + 4


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def json_object(text: str, *, repair: bool = True) -> dict | None:
    """The JSON object in a reply (a ```json fence and text around it allowed), or None. Strict JSON first; a
    reply that is not (cut off at max_tokens, a trailing comma, single quotes) goes to `json-repair` unless
    `repair=False`; it keeps what was written before the damage, so a caller whose last field may be cut checks
    for it (bench/json_replies.py measures both readings on the models' replies)."""
    body = _FENCE.sub("", text.strip()).strip()
    start, end = body.find("{"), body.rfind("}")
    if start == -1:
        return None
    if end > start:
        try:
            data = json.loads(body[start:end + 1])
            return data if isinstance(data, dict) else None
        except ValueError:
            pass
    if not repair:
        return None
    data = json_repair.loads(body[start:])
    return data if isinstance(data, dict) and data else None
