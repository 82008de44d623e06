"""Any OpenAI-compatible server; in production, vLLM (`vllm serve MODEL` exposes /v1).

Map steps go out concurrently (bounded), so vLLM's continuous batching sees them together. 429/5xx and
timeouts are retried with exponential backoff. The context window comes from /v1/models (vLLM's
max_model_len) and token counts from the server's tokenizer (vLLM /tokenize, llama.cpp /extras/tokenize).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from ragqa.errors import BackendError
from ragqa.llm.base import Completion, Message, approx_message_tokens

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatLLM:
    def __init__(self, base_url: str, *, model: str = "", api_key: str = "EMPTY", timeout: float = 120.0,
                 retries: int = 4, concurrency: int = 8, context_window: int | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retries = retries
        self.concurrency = max(1, concurrency)
        self._context_window = context_window
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0),
                                    headers={"Authorization": f"Bearer {api_key}"},
                                    limits=httpx.Limits(max_connections=self.concurrency + 2))
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
            data = self._request("GET", "/models")
            self._model_list = data.get("data", [])
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
    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            try:
                r = self._client.request(method, url, json=body)
                if r.status_code < 400:
                    return r.json()
                if r.status_code not in RETRY_STATUS or attempt == self.retries:
                    raise BackendError(f"{method} {url} -> HTTP {r.status_code}: {r.text[:300]}")
                delay = float(r.headers.get("retry-after") or 0) or self._backoff(attempt)
                log.warning("%s %s -> %d; retry %d in %.1fs", method, path, r.status_code, attempt + 1, delay)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                if attempt == self.retries:
                    raise BackendError(f"{method} {url} failed after {attempt + 1} tries: {e}",
                                       hint="Is the server running? Check RAGQA_LLM__BASE_URL.") from e
                delay = self._backoff(attempt)
                log.warning("%s %s: %s; retry %d in %.1fs", method, path, type(e).__name__, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(8.0, 0.25 * 2**attempt) * (0.5 + random.random())

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
                r = self._client.post(self.base_url + "/chat/completions", json=probe)
                self._json_style = "json_schema" if r.status_code < 400 else "json_object"
            except httpx.HTTPError:
                self._json_style = "json_schema"  # unreachable now; the real request will say so
            log.info("structured output style for %s: %s", self.base_url, self._json_style)

    def complete(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
                 stop: list[str] | None = None, json_schema: dict | None = None) -> Completion:
        if json_schema is not None and self._json_style is None:
            self._models()
            self._detect_json_style()
        data = self._request("POST", "/chat/completions",
                             self._body(messages, max_tokens, temperature, stop, json_schema))
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return Completion(choice["message"].get("content") or "", int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)), choice.get("finish_reason") or "stop")

    def complete_many(self, batch: list[list[Message]], **kw) -> list[Completion]:
        if len(batch) <= 1:
            return [self.complete(m, **kw) for m in batch]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch)), thread_name_prefix="ragqa-llm") as pool:
            return list(pool.map(lambda m: self.complete(m, **kw), batch))

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
               stop: list[str] | None = None) -> Iterator[str]:
        body = self._body(messages, max_tokens, temperature, stop, stream=True)
        with self._client.stream("POST", self.base_url + "/chat/completions", json=body) as r:
            if r.status_code >= 400:
                r.read()
                raise BackendError(f"streaming request -> HTTP {r.status_code}: {r.text[:300]}")
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    delta = json.loads(payload)["choices"][0].get("delta", {}).get("content")
                except (ValueError, KeyError, IndexError):
                    continue
                if delta:
                    yield delta
