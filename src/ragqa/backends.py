"""Names in settings -> instances. The only place that knows which class a name means; imports are lazy."""

from __future__ import annotations

import threading

from ragqa.errors import ConfigError
from ragqa.settings import Settings

_lock = threading.Lock()
_embedders: dict[tuple, object] = {}

MULTILINGUAL_EMBEDDERS: set[str] = set()


def embedder(name: str, settings: Settings):
    """One instance per (name, backend) per process: the model is loaded once."""
    key = (name, settings.embed_backend, settings.embed_batch_size)
    with _lock:
        if key not in _embedders:
            from ragqa.embed.sentence_transformer import SentenceTransformerEmbedder

            _embedders[key] = SentenceTransformerEmbedder(
                name, backend=settings.embed_backend, batch_size=settings.embed_batch_size,
                threads=settings.embed_threads, cache_dir=settings.cache_dir / "models")
        return _embedders[key]


def graph_extractor(name: str = "fast"):
    if name == "fast":
        from ragqa.graph.extract import FastExtractor

        return FastExtractor()
    raise ConfigError(f"unknown graph extractor '{name}'", hint="Known: fast.")
