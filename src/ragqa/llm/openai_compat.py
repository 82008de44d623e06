"""Any OpenAI-compatible server; in production, vLLM (`vllm serve MODEL` exposes /v1).

Requests go through the `openai` SDK, which retries 408/409/429/5xx, timeouts and dropped connections with
jittered exponential backoff (honouring Retry-After) and parses the streams. Map steps go out concurrently
(bounded), so vLLM's continuous batching sees them together. The context window comes from /v1/models (vLLM's
max_model_len) and token counts from the server's tokenizer (vLLM /tokenize, llama.cpp /extras/tokenize),
extension routes the SDK does not know, reached with plain httpx.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai

from ragqa.errors import BackendError
from ragqa.llm.base import Completion, Message, approx_message_tokens

log = logging.getLogger(__name__)



class OpenAICompatLLM:
    def __init__(self, base_url: str, *, model: str = "", api_key: str = "EMPTY", timeout: float = 120.0,
                 retries: int = 4, concurrency: int = 8, context_window: int | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = max(1, concurrency)
        self._context_window = context_window
        self._sdk = openai.OpenAI(base_url=self.base_url, api_key=api_key or "EMPTY", timeout=timeout,
                                  max_retries=retries)
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0),  # the tokenizer routes
                                    headers={"Authorization": f"Bearer {api_key}"})
        self._tokenizer_route: str | None = None
        self._json_style: str | None = None  # "json_schema" (vLLM, OpenAI) or "json_object" (llama.cpp)
        self._lock = threading.Lock()
        self._token_counts: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.model or self._models()[0]["id"]

    # -- server facts ------------------------------------------------------------------------------
    def _models(self) -> list[dict]:
        if not hasattr(self, "_model_list"):
            with self._errors("GET /models"):
                self._model_list = [m.to_dict() for m in self._sdk.models.list().data]
            if not self._model_list:
                raise BackendError(f"{self.base_url}/models lists no model")
            if not self.model:
                self.model = self._model_list[0]["id"]
        return self._model_list

    @property
    def context_window(self) -> int:
        if self._context_window is None:
            entry = next((m for m in self._models() if m["id"] == self.model), self._models()[0])
            window = entry.get("max_model_len") or entry.get("meta", {}).get("n_ctx_train")
            if not window:
                raise BackendError(f"the server at {self.base_url} does not report a context window",
                                   hint="Set RAGQA_LLM__N_CTX to the server's --max-model-len.")
            self._context_window = int(window)
        return self._context_window

    @property
    def supports_json(self) -> bool:
        return True

    def count_tokens(self, text: str) -> int:
        # Budgets count the same texts repeatedly (binary searches, re-budgeting): ask the server once per text.
        cached = self._token_counts.get(text)
        if cached is None:
            cached = self._count_tokens(text)
            if len(self._token_counts) > 50_000:
                self._token_counts.clear()
            self._token_counts[text] = cached
        return cached

    def _count_tokens(self, text: str) -> int:
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        routes = [self._tokenizer_route] if self._tokenizer_route else [
            f"{root}/tokenize", f"{self.base_url}/tokenize", f"{root}/extras/tokenize"]
        for route in routes:
            if route == "none":
                break
            try:
                r = self._client.post(route, json={"model": self.model, "prompt": text, "input": text,
                                                   "add_special_tokens": False})
                if r.status_code == 200:
                    data = r.json()
                    self._tokenizer_route = route
                    return int(data.get("count") or len(data.get("tokens", [])))
            except httpx.HTTPError:
                pass
        self._tokenizer_route = "none"
        return max(1, int(len(text.encode("utf-8")) / 3))  # conservative: ~4 bytes per token in English

    def count_messages(self, messages: list[Message]) -> int:
        return approx_message_tokens(self, messages)

    # -- requests ----------------------------------------------------------------------------------
    def _errors(self, what: str):
        """The SDK's errors, after its retries, as BackendErrors that say which server and what it answered."""
        return _SdkErrors(f"{what} at {self.base_url}")

    def _body(self, messages, max_tokens, temperature, stop, json_schema=None, stream=False) -> dict:
        self._models()
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                "stream": stream}
        if stop:
            body["stop"] = stop
        if json_schema is not None:
            if (self._json_style or "json_schema") == "json_schema":
                body["response_format"] = {"type": "json_schema",
                                           "json_schema": {"name": "answer", "schema": json_schema}}
            else:
                body["response_format"] = {"type": "json_object", "schema": json_schema}
        return body

    def _detect_json_style(self) -> None:
        """Once, before the first structured request (and under a lock, so a concurrent batch does not race):
        OpenAI and vLLM take `json_schema`; llama.cpp's server wants `json_object` with a `schema`."""
        with self._lock:
            if self._json_style is not None:
                return
            probe = {"model": self.model, "max_tokens": 8, "temperature": 0,
                     "messages": [{"role": "user", "content": 'Reply with {"ok": true}'}],
                     "response_format": {"type": "json_schema", "json_schema": {
                         "name": "probe", "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}
            try:
                self._sdk.with_options(max_retries=0).chat.completions.create(**probe)
                self._json_style = "json_schema"
            except openai.APIStatusError:
                self._json_style = "json_object"
            except openai.APIError:
                self._json_style = "json_schema"  # unreachable now; the real request will say so
            log.info("structured output style for %s: %s", self.base_url, self._json_style)

    def complete(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
                 stop: list[str] | None = None, json_schema: dict | None = None) -> Completion:
        if json_schema is not None and self._json_style is None:
            self._models()
            self._detect_json_style()
        with self._errors("POST /chat/completions"):
            data = self._sdk.chat.completions.create(**self._body(messages, max_tokens, temperature, stop,
                                                                  json_schema))
        choice = data.choices[0]
        usage = data.usage
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        return Completion(choice.message.content or "", int(usage.prompt_tokens if usage else 0),
                          int(usage.completion_tokens if usage else 0), choice.finish_reason or "stop",
                          int(getattr(details, "cached_tokens", 0) or 0))

    def complete_many(self, batch: list[list[Message]], **kw) -> list[Completion]:
        if len(batch) <= 1:
            return [self.complete(m, **kw) for m in batch]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch)), thread_name_prefix="ragqa-llm") as pool:
            return list(pool.map(lambda m: self.complete(m, **kw), batch))

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
               stop: list[str] | None = None, json_schema: dict | None = None) -> Iterator[str]:
        if json_schema is not None and self._json_style is None:
            self._models()
            self._detect_json_style()
        body = self._body(messages, max_tokens, temperature, stop, json_schema, stream=True)
        with self._errors("streaming POST /chat/completions"):
            chunks = self._sdk.chat.completions.create(**body)
            with chunks:
                for chunk in chunks:
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        yield delta


class _SdkErrors:
    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if isinstance(error, openai.APIStatusError):
            raise BackendError(f"{self.what} -> HTTP {error.status_code}: {error.response.text[:300]}") from error
        if isinstance(error, openai.APIConnectionError):  # timeouts too
            raise BackendError(f"{self.what} failed: {error}",
                               hint="Is the server running? Check RAGQA_LLM__BASE_URL.") from error
        return False
