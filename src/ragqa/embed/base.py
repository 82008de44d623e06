"""The Embedder protocol: what ingestion and retrieval need from a text-embedding model."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in a collection's manifest; another name is refused there
    dim: int
    max_tokens: int  # the model truncates past this; chunks are cut to fit

    def count_tokens(self, text: str) -> int: ...

    def tokenizer(self):  # a Hugging Face tokenizer, for the splitter
        ...

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalised."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) float32, L2-normalised; separate because some models prefix queries."""
        ...
