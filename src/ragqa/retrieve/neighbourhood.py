"""An entity's neighbourhood for `ragqa graph show` and its PNG: the chunks about it and the entities linked to
it, each link with the pages that support it, ordered as graph expansion walks them."""

from __future__ import annotations

import difflib

from ragqa.errors import NotFound
from ragqa.graph.extract import normalise
from ragqa.graph.kg import KnowledgeGraph
from ragqa.index.docstore import DocStore
from ragqa.retrieve.graph import EntityIndex, match_form

_ORDER = {"mentions": 0, "mentioned by": 1, "co-occurs": 2}  # the links expansion walks come first


def resolve_entity(kg: KnowledgeGraph, name: str, collection: str) -> str:
    """A user's spelling of an entity -> its key in the graph; NotFound with the closest names."""
    g = kg.g
    key = normalise(name)
    if key in g:
        return key
    form = match_form(name)
    same = [n for n in g if match_form(n) == form]
    if same:
        return max(same, key=lambda n: g.nodes[n].get("mentions", 0))
    close = difflib.get_close_matches(key, list(g.nodes), n=5, cutoff=0.6)
    raise NotFound(f"No entity '{name}' in collection '{collection}'.",
                   hint=f"Close: {', '.join(close)}." if close else "See `ragqa graph export` for all names.")


def neighbourhood(kg: KnowledgeGraph, index: EntityIndex, docs: DocStore, key: str, limit: int = 20) -> dict:
    """The entity, the chunks about it, and its neighbours: entities it mentions from its own chunks, entities
    whose chunks mention it, and co-occurring ones."""
    node = kg.g.nodes[key]
    about = kg.about_chunk_ids(key)
    links: dict[tuple[str, str], set[int]] = {}
    for chunk_id in about:  # what the entity's own chunks mention
        hit = docs.hits([chunk_id], [0.0], "graph")
        for other in (index.mentions_of(hit[0]) if hit else set()):
            links.setdefault((other, "mentions"), set()).add(chunk_id)
    for chunk_id in set(kg.chunk_ids(key)) | set(index.mentioning(key)):  # who mentions it
        for other in index.chunk_about.get(chunk_id, set()) - {key}:
            links.setdefault((other, "mentioned by"), set()).add(chunk_id)
    for other, edge in kg.neighbours(key, limit=limit):
        links.setdefault((other, "co-occurs"), set()).update(c for ids in edge["docs"].values() for c in ids)
    pages = _pages(docs, {c for ids in links.values() for c in ids} | set(about))
    ranked = sorted(links.items(), key=lambda kv: (_ORDER[kv[0][1]], -len(kv[1]), kv[0][0]))[:limit]
    neighbours = [{"entity": other, "label": kg.g.nodes[other]["label"] if other in kg.g else other,
                   "relation": relation, "weight": len(chunks),
                   "pages": sorted({pages[c] for c in chunks if c in pages})[:10]}
                  for (other, relation), chunks in ranked]
    return {"entity": key, "label": node.get("label", key), "type": node.get("type", ""),
            "mentions": node.get("mentions", 0), "documents": len(node.get("docs", {})),
            "about": sorted({pages[c] for c in about if c in pages}), "neighbours": neighbours}


def _pages(docs: DocStore, chunk_ids: set[int]) -> dict[int, tuple[str, int]]:
    hits = docs.hits(sorted(chunk_ids), [0.0] * len(chunk_ids), "graph")
    return {h.chunk_id: (h.filename, h.page_start) for h in hits}
