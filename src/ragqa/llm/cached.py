"""The one LLM reply cache: SQLite, keyed by (model, messages, generation settings).

Greedy decoding makes a reply a function of its key, so an interrupted evaluation, graph extraction or
summary resumes without redoing a call, and two chains that send the same prompt pay for it once.
`CachedLLM` wraps an LLM with it; the summariser reads and writes it directly to report progress on hits.
A reply's `cached_tokens` is not kept: it says how much of the prompt the model's KV cache held in the run that
evaluated it, so a replay (which evaluates nothing) reports 0.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from ragqa.llm.base import Completion, Message

_KEYED = ("max_tokens", "temperature", "stop", "json_schema")


class ReplyCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, text TEXT, prompt_tokens INT, "
                         "completion_tokens INT, finish TEXT)")
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, messages: list[Message], **settings) -> str:
        blob = json.dumps([model, messages, {k: settings.get(k) for k in _KEYED}], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT text, prompt_tokens, completion_tokens, finish FROM replies WHERE key=?",
                                   (key,)).fetchone()
        return Completion(*row) if row else None

    def put(self, key: str, c: Completion) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?,?,?,?,?)",
                             (key, c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason))


class CachedLLM:
    """Delegates to an LLM and remembers every reply in a ReplyCache."""

    def __init__(self, llm, cache: Path | ReplyCache):
        self._llm = llm
        self.name = llm.name
        self.cache = cache if isinstance(cache, ReplyCache) else ReplyCache(cache)
        self.hits = self.misses = 0

    def __getattr__(self, name):
        return getattr(self._llm, name)

    def _key(self, messages, kw) -> str:
        return ReplyCache.key(self.name, messages, **kw)

    def complete(self, messages, **kw) -> Completion:
        key = self._key(messages, kw)
        if (hit := self.cache.get(key)) is not None:
            self.hits += 1
            return hit
        self.misses += 1
        c = self._llm.complete(messages, **kw)
        self.cache.put(key, c)
        return c

    def complete_many(self, batch, **kw) -> list[Completion]:
        keys = [self._key(m, kw) for m in batch]
        out: list[Completion | None] = [self.cache.get(k) for k in keys]
        missing = [i for i, c in enumerate(out) if c is None]
        self.hits += len(batch) - len(missing)
        self.misses += len(missing)
        if missing:
            for i, c in zip(missing, self._llm.complete_many([batch[i] for i in missing], **kw), strict=True):
                self.cache.put(keys[i], c)
                out[i] = c
        return out  # type: ignore[return-value]

    def stream(self, messages, **kw):
        yield self.complete(messages, **kw).text
