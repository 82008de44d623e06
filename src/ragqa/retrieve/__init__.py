"""Retrievers: dense (FAISS), lexical (FTS5 BM25), hybrid (reciprocal-rank fusion), graph (hybrid expanded
through the entity graph) and auto (routes each question: how much each signal and the graph may weigh)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cached_property

import numpy as np

from ragqa.cjk import cjk_share, has_cjk
from ragqa.embed.base import Embedder
from ragqa.filters import Filter
from ragqa.index.docstore import DocStore
from ragqa.retrieve.graph import EntityIndex, candidates, expand, merge, rank_score
from ragqa.types import Hit

RRF_K = 60
MODES = ("dense", "lexical", "hybrid", "graph", "auto")
EXACT_BELOW = 5000  # allowed chunks up to this many: scored exactly from their stored vectors (a few ms)


class Scope:
    """A filter and the chunk ids it allows, shared by every mode of a search (and, through the retriever's
    cache, by the next searches with the same filter while the docstore is unchanged)."""

    def __init__(self, store: DocStore, within: Filter):
        self.store, self.filter, self.ids = store, within, store.allowed_chunks(within)

    @cached_property
    def id_set(self) -> frozenset[int]:
        return frozenset(int(i) for i in self.ids)

    @cached_property
    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, their stored vectors) of a small scope, read once."""
        batches = list(self.store.iter_vectors(self.ids))
        if not batches:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.concatenate([b[0] for b in batches]), np.vstack([b[1] for b in batches])


def dense(store: DocStore, search: Callable[..., tuple], embedder: Embedder, query: str,
          k: int, scope: Scope | None = None) -> list[Hit]:
    vec = embedder.embed_query(query)
    if scope is None:
        scores, ids = search(vec, k)
    elif len(scope.ids) <= EXACT_BELOW:
        scores, ids = exact(vec, *scope.vectors, k)
    else:
        scores, ids = search(vec, k, allowed=scope.ids)
    return store.hits([int(i) for i in ids[0] if i >= 0], [float(s) for s, i in zip(scores[0], ids[0]) if i >= 0],
                      "dense")


def exact(query_vec: np.ndarray, chunk_ids: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner products with the stored vectors of a few chunks: exact whatever the index, and no approximate
    search has to find them among a million others."""
    from ragqa.index.vectors import order_ties

    if not len(chunk_ids):
        return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
    scores = vectors @ np.asarray(query_vec, dtype=np.float32).reshape(-1)
    top = np.argsort(-scores, kind="stable")[:k]
    return order_ties(scores[top][None, :], chunk_ids[top][None, :])


def lexical(store: DocStore, query: str, k: int, scope: Scope | None = None) -> list[Hit]:
    return store.lexical_search(query, k, within=scope.filter if scope else None)


def fuse(rankings: list[tuple[list[Hit], float]], k: int) -> list[Hit]:
    """Weighted reciprocal-rank fusion; exact duplicate texts (the same page ingested twice) kept once."""
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    for hits, weight in rankings:
        for rank, hit in enumerate(hits):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (RRF_K + rank + 1)
            first.setdefault(hit.chunk_id, hit)
    return _best_unique(scores, first, k, "hybrid")


def hybrid(store: DocStore, search, embedder: Embedder, query: str, k: int, *, multilingual: bool = False,
           scope: Scope | None = None) -> list[Hit]:
    depth = max(20, 4 * k)
    # An English-only embedder cannot read a CJK question: let BM25 over bigrams lead (CMRC R@1 .96 vs .46).
    # MiniLM trails BM25 at rank 1 on the shared sets (SQuAD R@1 .65 vs .79), so BM25 wins exact ties.
    dense_weight = (0.9 if not has_cjk(query) else 0.25) if not multilingual else 1.0
    return fuse([(dense(store, search, embedder, query, depth, scope), dense_weight),
                 (lexical(store, query, depth, scope), 1.0)], k)


def fuse_scores(rankings: list[tuple[list[Hit], float]], k: int, source: str = "hybrid") -> list[Hit]:
    """Convex combination of min-max normalised scores (Bruch et al. 2023, "An Analysis of Fusion Functions for
    Hybrid Retrieval"): unlike RRF it keeps how far ahead a hit is, which is what a confident BM25 top hit
    needs (SQuAD R@1 .81 at equal weights vs .77 for RRF). A chunk missing from a list scores 0 there."""
    scores: dict[int, float] = {}
    first: dict[int, Hit] = {}
    for hits, weight in rankings:
        if not hits or weight <= 0:
            continue
        values = [h.score for h in hits]
        lo, hi = min(values), max(values)
        for hit in hits:
            norm = (hit.score - lo) / (hi - lo) if hi > lo else 1.0
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight * norm
            first.setdefault(hit.chunk_id, hit)
    return _best_unique(scores, first, k, source)


def _best_unique(scores: dict[int, float], first: dict[int, Hit], k: int, source: str) -> list[Hit]:
    """The k best fused chunks, exact duplicate texts (the same page ingested twice) kept once."""
    out, seen = [], set()
    for chunk_id in sorted(scores, key=lambda c: -scores[c]):
        hit = first[chunk_id]
        fingerprint = hashlib.blake2b(" ".join(hit.text.split()).encode(), digest_size=8).digest()
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        out.append(Hit(hit.chunk_id, hit.doc_id, hit.filename, hit.page_start, hit.page_end, hit.text,
                       round(scores[chunk_id], 6), source, hit.ordinal))
        if len(out) == k:
            break
    return out


def scored_hybrid(store: DocStore, search, embedder: Embedder, query: str, k: int, *,
                  multilingual: bool = False, scope: Scope | None = None) -> list[Hit]:
    """Dense and BM25 fused by score, dense weighed by how much of the question the embedder can read."""
    depth = max(40, 2 * k)
    share = cjk_share(query)
    dense_weight = 0.5 if multilingual else (0.0 if share > 0.5 else 0.5 * (1.0 - share))
    rankings = [(lexical(store, query, depth, scope), 0.5)]
    if dense_weight > 0.05:
        rankings.append((dense(store, search, embedder, query, depth, scope), dense_weight))
    return fuse_scores(rankings, k)


def graph(store: DocStore, search, embedder: Embedder, index: EntityIndex, query: str, k: int, *,
          multilingual: bool = False, seeds: int = 5, skip: set[str] = frozenset(),
          scope: Scope | None = None) -> list[Hit]:
    """Hybrid hits, plus the chunks about the entities the top `seeds` hits mention (path-weighted)."""
    base = scored_hybrid(store, search, embedder, query, max(30, 3 * k), multilingual=multilingual, scope=scope)
    return expand_hits(store, embedder, index, query, base, k, seeds=seeds, skip=skip, scope=scope)


def auto(store: DocStore, search, embedder: Embedder, index: EntityIndex, query: str, k: int, *,
         multilingual: bool = False, scope: Scope | None = None) -> list[Hit]:
    """Per question: signals weighed by what the embedder can read; the graph only where it can help.

    - No expansion when the question is (mostly) CJK and the graph's extractor reads only Latin-script names.
    - A comparison (the question names two entities and the top hits are about two of them): both sides are
      already here, and expanding would push the second one down; stay with the hybrid ranking.
    - Otherwise expand, but never through an entity the question names (its chunks are found directly).
    """
    base = scored_hybrid(store, search, embedder, query, max(30, 3 * k), multilingual=multilingual, scope=scope)
    if not len(index) or cjk_share(query) > 0.5:
        return base[:k]
    named = index.linked(query)
    about_top = set().union(*(index.chunk_about.get(h.chunk_id, set()) for h in base[:2])) if base else set()
    if len(named & about_top) >= 2:
        return base[:k]
    return expand_hits(store, embedder, index, query, base, k, skip=named, scope=scope)


def expand_hits(store: DocStore, embedder: Embedder, index: EntityIndex, query: str, base: list[Hit], k: int, *,
                seeds: int = 5, hops: int = 2, hop_seeds: int = 3, skip: set[str] = frozenset(),
                scope: Scope | None = None) -> list[Hit]:
    """Paths from the top `seeds` hits, then (for questions of 3-4 hops) from the best `hop_seeds` chunks the
    first hop reached, each hop weighted by the path that led to it; with a scope, only to allowed chunks."""
    if not len(index) or not base:
        return base[:k]
    query_vec = embedder.embed_query(query)
    frontier = [(h, rank_score(r)) for r, h in enumerate(base[:seeds])]
    visited = {h.chunk_id for h, _ in frontier}
    paths: dict = {}
    known: dict[int, Hit] = {h.chunk_id: h for h in base}
    for _hop in range(hops):
        cands = candidates(index, [h for h, _ in frontier], skip=skip)
        if scope is not None:
            cands = [c for c in cands if c[2] in scope.id_set]
        if not cands:
            break
        targets = {t for _, _, t, _ in cands}
        found = expand(index, frontier, query_vec, store.vectors_of(targets), skip=skip)
        for chunk_id, path in found.items():
            if chunk_id not in paths or path.score > paths[chunk_id].score:
                paths[chunk_id] = path
        missing = [c for c in found if c not in known]
        known.update({h.chunk_id: h for h in store.hits(missing, [0.0] * len(missing), "graph")})
        best = sorted((c for c in found if c not in visited and c in known), key=lambda c: -found[c].score)
        frontier = [(known[c], found[c].score) for c in best[:hop_seeds]]
        visited.update(c for c, _ in ((h.chunk_id, w) for h, w in frontier))
        if not frontier:
            break
    return merge(base, paths, known, k)
