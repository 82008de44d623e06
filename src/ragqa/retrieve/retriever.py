"""One collection's retriever: routes a question to a retrieval mode, widens hits into passages, and keeps
what the modes reuse (query vectors, the entity index) for as long as the docstore does not change."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from ragqa import retrieve
from ragqa.embed.base import Embedder
from ragqa.errors import ConfigError, InputError
from ragqa.filters import Filter
from ragqa.index.docstore import DocStore
from ragqa.index.vectors import VectorIndex
from ragqa.retrieve.graph import EntityIndex
from ragqa.retrieve.passages import with_neighbours
from ragqa.types import Hit


class QueryCache:
    """The embedder with its last few query vectors remembered: a question searched in several modes (or the
    same question asked again) is embedded once."""

    _cache: dict[tuple[str, str], np.ndarray] = {}
    _lock = threading.Lock()

    def __init__(self, embedder: Embedder):
        self._embedder = embedder

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_query(self, text: str) -> np.ndarray:
        key = (self._embedder.name, text)
        with self._lock:
            vec = self._cache.get(key)
        if vec is None:
            vec = self._embedder.embed_query(text)
            with self._lock:
                if len(self._cache) >= 4096:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = vec
        return vec


class Retriever:
    def __init__(self, docs: DocStore, vectors: Callable[[], VectorIndex], embedder: Callable[[], Embedder], *,
                 multilingual: bool, mode: str = "hybrid", neighbours: int = 0):
        """`vectors` and `embedder` are asked for on first use: a lexical search loads neither."""
        self.docs, self._vectors, self._embedder = docs, vectors, embedder
        self.multilingual, self.mode, self.neighbours = multilingual, mode, neighbours
        self._entities: EntityIndex | None = None
        self._entities_generation = -1
        self._lock = threading.Lock()
        self._scopes: dict[tuple[Filter, int], retrieve.Scope] = {}

    def search(self, query: str, k: int = 5, mode: str | None = None, within: Filter | None = None) -> list[Hit]:
        """The k best chunks for the query; `within` limits every mode to the chunks a filter allows."""
        mode = mode or self.mode
        if not query.strip():
            raise InputError("empty query")
        if mode not in retrieve.MODES:
            raise ConfigError(f"unknown retrieval mode '{mode}'", hint=f"Known: {', '.join(retrieve.MODES)}.")
        scope = self.scope(within) if within else None
        if scope is not None and not len(scope.ids):
            return []
        if mode == "lexical":
            return retrieve.lexical(self.docs, query, k, scope)
        search, embedder = self._vectors().search, QueryCache(self._embedder())
        if mode == "dense":
            return retrieve.dense(self.docs, search, embedder, query, k, scope)
        if mode == "hybrid":
            return retrieve.hybrid(self.docs, search, embedder, query, k, multilingual=self.multilingual, scope=scope)
        route = retrieve.graph if mode == "graph" else retrieve.auto
        return route(self.docs, search, embedder, self.entity_index(), query, k, multilingual=self.multilingual,
                     scope=scope)

    def scope(self, within: Filter) -> retrieve.Scope:
        """The filter's allowed chunks (and, for a few, their vectors), kept for the next searches with the same
        filter until the docstore changes: a user who narrows to some documents asks several questions there."""
        key = (within, self.docs.generation)
        with self._lock:
            scope = self._scopes.get(key)
        if scope is None:
            scope = retrieve.Scope(self.docs, within)
            with self._lock:
                if len(self._scopes) >= 8:  # a small scope holds up to 5,000 vectors (7.5 MB)
                    self._scopes.pop(next(iter(self._scopes)))
                self._scopes[key] = scope
        return scope

    def passages(self, hits: list[Hit], neighbours: int | None = None) -> list[Hit]:
        """What the LLM reads: each hit with its neighbouring chunks, touching hits merged (retrieve/passages)."""
        return with_neighbours(hits, self.docs, self.neighbours if neighbours is None else neighbours)

    def entity_index(self) -> EntityIndex:
        """What graph expansion reads (entities, the chunks about them, mentions), rebuilt per generation."""
        with self._lock:
            generation = self.docs.generation
            if self._entities is None or self._entities_generation != generation:
                self._entities, self._entities_generation = EntityIndex.build(self.docs), generation
            return self._entities
