"""Entity-graph expansion: from the top hits, through the entities they mention, to the chunks *about* them.

A second-hop passage is usually named after an entity that the first-hop passage mentions and the question
does not (HotpotQA: ~80% of dense misses). The graph holds exactly that: per entity, the chunks about it
(a document's title, a heading, a paragraph's subject) and the chunks that mention it. Mentions are the
extractor's stored spans plus, at query time, any known entity name found in the hit's text (a dictionary
match: it catches lower-case names like "aircraft carrier" and never goes stale, so deletes stay diffs).

A path seed -> entity -> target scores  seed_score * specificity(entity) * relevance(target), which is below
the seed's own score: the graph adds evidence next to the hit that led to it and never outranks that hit.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ragqa.graph.extract import fold
from ragqa.index.docstore import DocStore
from ragqa.types import Hit

_WORDS = re.compile(r"\w+", re.UNICODE)
_POSSESSIVE = re.compile(r"['’]s\b")


def match_form(text: str) -> str:
    """Text or an entity key -> lower-case words joined by single spaces ("St. Louis's" -> "st louis")."""
    return " ".join(_WORDS.findall(_POSSESSIVE.sub("", fold(text).casefold())))


@dataclass
class EntityIndex:
    """The graph's expansion side, read from the docstore's mention rows once per generation."""

    about: dict[str, list[int]]  # entity -> chunks about it
    chunk_about: dict[int, set[str]]  # chunk -> entities it is about
    chunk_doc: dict[int, str]  # chunk -> its document, for the about-chunks
    mentioned: dict[int, set[str]]  # chunk -> stored mentions (of entities that have chunks about them)
    by_form: dict[str, str]  # match form -> entity key
    n_chunks: int
    max_words: int = 1
    store: DocStore | None = None
    _df: dict[str, int] = field(default_factory=dict)
    _mentioning: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, store: DocStore) -> EntityIndex:
        about: dict[str, list[int]] = defaultdict(list)
        chunk_about: dict[int, set[str]] = defaultdict(set)
        chunk_doc: dict[int, str] = {}
        for entity, chunk_id, doc_id in store.about_rows():
            about[entity].append(chunk_id)
            chunk_about[chunk_id].add(entity)
            chunk_doc[chunk_id] = doc_id
        mentioned: dict[int, set[str]] = defaultdict(set)
        for entity, chunk_id in store.mention_rows():
            if entity in about:
                mentioned[chunk_id].add(entity)
        by_form = {}
        for entity in about:
            form = match_form(entity)
            if form:
                by_form.setdefault(form, entity)
        n_chunks = store.n_chunks()
        max_words = max((f.count(" ") + 1 for f in by_form), default=1)
        return cls(dict(about), dict(chunk_about), chunk_doc, dict(mentioned), by_form, n_chunks,
                   min(max_words, 8), store)

    def __len__(self) -> int:
        return len(self.about)

    def linked(self, text: str) -> set[str]:
        """Known entities named in `text` (longest match first, so "New York Times" is not also "New York")."""
        words = match_form(text).split()
        found: set[str] = set()
        i = 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                entity = self.by_form.get(" ".join(words[i:i + n]))
                if entity is not None:
                    found.add(entity)
                    i += n
                    break
            else:
                i += 1
        return found

    def mentions_of(self, hit: Hit) -> set[str]:
        """Entities with chunks of their own that `hit` mentions and is not itself about."""
        return (self.mentioned.get(hit.chunk_id, set()) | self.linked(hit.text)) - self.chunk_about.get(
            hit.chunk_id, set())

    def df(self, entity: str) -> int:
        """Chunks whose text names the entity (FTS phrase count, cached): common entities link weakly."""
        if entity not in self._df:
            phrase = match_form(entity)
            n = self.store.phrase_count(phrase) if phrase and self.store is not None else 0
            self._df[entity] = max(n, len(self.about.get(entity, ())))
        return self._df[entity]

    def mentioning(self, entity: str, limit: int = 50) -> list[int]:
        """Chunks whose text names the entity (FTS phrase match, cached)."""
        if entity not in self._mentioning:
            phrase = match_form(entity)
            ids = self.store.phrase_chunks(phrase, limit) if phrase and self.store is not None else []
            self._mentioning[entity] = ids
        return self._mentioning[entity]

    def specificity(self, entity: str) -> float:
        """1 for an entity named in one chunk, falling towards 0 for one named everywhere (an idf in [0, 1])."""
        if self.n_chunks <= 1:
            return 1.0
        return max(0.0, 1.0 - math.log(max(1, self.df(entity))) / math.log(self.n_chunks))


@dataclass
class Path:
    seed: int  # chunk id of the hit the path starts from
    entity: str
    score: float


def rank_score(rank: int) -> float:
    """A hit's weight from its rank (1, 1/2, 1/3, ...): fused scores are too flat to compare paths with."""
    return 1.0 / (rank + 1)


def expand(index: EntityIndex, seeds: list[tuple[Hit, float]], query_vec: np.ndarray,
           vectors: dict[int, np.ndarray], *, gamma: float = 0.9, back: float = 0.6,
           skip: set[str] = frozenset()) -> dict[int, Path]:
    """Best one-hop path to each chunk reachable from the weighted seeds: seed weight x edge x specificity x
    relevance. Forward edges (seed mentions, target is about) weigh `gamma`, backward ones `back`.

    `vectors` must hold the candidates' vectors (see `candidates`); relevance is the target's cosine with the
    question relative to the best cosine among the candidates, so the most question-like target of a hop wins.
    `skip`: entities not to expand through (those the question itself names: their chunks are found directly).
    """
    paths: dict[int, Path] = {}
    weight = {h.chunk_id: w for h, w in seeds}
    cands = candidates(index, [h for h, _ in seeds], skip=skip, back=back > 0)
    cos = {c: float(vectors[c] @ query_vec) for c in {t for _, _, t, _ in cands} if c in vectors}
    if not cos:
        return paths
    top_cos = max(max(cos.values()), 1e-6)
    for seed, entity, target, forward in cands:
        if target not in cos:
            continue
        relevance = max(0.0, cos[target]) / top_cos
        score = weight[seed.chunk_id] * (gamma if forward else back) * index.specificity(entity) * relevance
        if target not in paths or score > paths[target].score:
            paths[target] = Path(seed.chunk_id, entity, score)
    return paths


def candidates(index: EntityIndex, seeds: list[Hit], *, skip: set[str] = frozenset(),
               back: bool = True) -> list[tuple[Hit, str, int, bool]]:
    """(seed hit, entity, target chunk, forward) for every one-hop path from the seeds. Forward: the seed
    mentions the entity, the target is about it. Backward: the seed is about the entity, the target mentions
    it (the second hop is about something that names the first: a band's album, an actor's child).
    A seed's own document is never a target."""
    out = []
    for seed in seeds:
        for entity in index.mentions_of(seed) - skip:
            for target in index.about.get(entity, ()):
                if index.chunk_doc.get(target) != seed.doc_id:
                    out.append((seed, entity, target, True))
        if back:
            for entity in index.chunk_about.get(seed.chunk_id, set()) - skip:
                for target in index.mentioning(entity):
                    if target not in index.chunk_about or entity not in index.chunk_about[target]:
                        out.append((seed, entity, target, False))
    return out


def merge(base: list[Hit], paths: dict[int, Path], targets: dict[int, Hit], k: int) -> list[Hit]:
    """Base hits keep their scores, plus the best path into them; new chunks enter with their path score.

    A hit is labelled `graph` only when a path lifted it into the top k: a hit retrieval had already ranked
    there is retrieval's, even when another hit also links to it (auto's chain choice reads the label)."""
    scores = {h.chunk_id: rank_score(r) for r, h in enumerate(base)}
    ranked_anyway = {h.chunk_id for h in base[:k]}
    by_id = {h.chunk_id: h for h in base}
    for chunk_id, path in paths.items():
        scores[chunk_id] = scores.get(chunk_id, 0.0) + path.score
        if chunk_id not in by_id and chunk_id in targets:
            by_id[chunk_id] = targets[chunk_id]
    ranked = sorted((c for c in scores if c in by_id), key=lambda c: -scores[c])[:k]
    return [Hit(by_id[c].chunk_id, by_id[c].doc_id, by_id[c].filename, by_id[c].page_start, by_id[c].page_end,
                by_id[c].text, round(scores[c], 6),
                "graph" if c in paths and c not in ranked_anyway else by_id[c].source, by_id[c].ordinal)
            for c in ranked]
