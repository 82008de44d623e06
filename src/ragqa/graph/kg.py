"""The knowledge graph: networkx, nodes = entities, edges = relations, each remembering its chunks per document.

Per-document membership makes a delete a diff. The file (node-link JSON) is derived from the docstore's
mention rows and stamped with its generation; a stale or missing file is rebuilt from those rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from ragqa.fsio import write_json_atomic

log = logging.getLogger(__name__)


class KnowledgeGraph:
    def __init__(self, graph: nx.Graph | None = None):
        self.g = graph if graph is not None else nx.Graph()

    # -- building --------------------------------------------------------------------------------
    def add_rows(self, mentions: Iterable[tuple], relations: Iterable[tuple]) -> None:
        """Rows as stored: mentions (entity, label, type, chunk_id, doc_id[, about]); relations (head, tail, label,
        chunk_id, doc_id). A node keeps, per document, the chunks mentioning it (`docs`) and those about it (`about`)."""
        g = self.g
        for entity, label, typ, chunk_id, doc_id, *rest in mentions:
            if entity not in g:
                g.add_node(entity, label=label, type=typ, mentions=0, docs={}, about={})
            node = g.nodes[entity]
            node.setdefault("about", {})
            node["mentions"] += 1
            chunks = node["docs"].setdefault(doc_id, [])
            if chunk_id not in chunks:
                chunks.append(chunk_id)
            if rest and rest[0]:
                about = node["about"].setdefault(doc_id, [])
                if chunk_id not in about:
                    about.append(chunk_id)
                node["label"] = label  # a title names the entity best
            if typ != "ENTITY" and node["type"] == "ENTITY":
                node["type"] = typ
        for head, tail, label, chunk_id, doc_id in relations:
            if not g.has_edge(head, tail):
                g.add_edge(head, tail, label=label, weight=0, docs={})
            edge = g.edges[head, tail]
            edge["weight"] += 1
            chunks = edge["docs"].setdefault(doc_id, [])
            if chunk_id not in chunks:
                chunks.append(chunk_id)

    def remove_document(self, doc_id: str, mentions: Iterable[tuple], relations: Iterable[tuple]) -> None:
        """Subtracts exactly what `doc_id` contributed (its stored rows); drops what is left empty."""
        g = self.g
        for head, tail, _label, _chunk, _doc in relations:
            if g.has_edge(head, tail):
                edge = g.edges[head, tail]
                edge["weight"] -= 1
                edge["docs"].pop(doc_id, None)
                if edge["weight"] <= 0 or not edge["docs"]:
                    g.remove_edge(head, tail)
        for entity, *_ in mentions:
            if entity in g:
                node = g.nodes[entity]
                node["mentions"] -= 1
                node["docs"].pop(doc_id, None)
                node.get("about", {}).pop(doc_id, None)
                if node["mentions"] <= 0 or not node["docs"]:
                    g.remove_node(entity)

    # -- reading ---------------------------------------------------------------------------------
    def chunk_ids(self, entity: str) -> list[int]:
        return sorted({c for ids in self.g.nodes[entity]["docs"].values() for c in ids}) if entity in self.g else []

    def about_chunk_ids(self, entity: str) -> list[int]:
        """The chunks that are about `entity` (titled by it, headed by it, or with it as their subject)."""
        if entity not in self.g:
            return []
        return sorted({c for ids in self.g.nodes[entity].get("about", {}).values() for c in ids})

    def neighbours(self, entity: str, limit: int = 20) -> list[tuple[str, dict]]:
        if entity not in self.g:
            return []
        edges = sorted(self.g[entity].items(), key=lambda kv: -kv[1]["weight"])
        return edges[:limit]

    def stats(self) -> dict[str, int]:
        return {"nodes": self.g.number_of_nodes(), "edges": self.g.number_of_edges()}

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: Path, generation: int) -> None:
        self.g.graph["generation"] = generation
        path.parent.mkdir(parents=True, exist_ok=True)
        data = nx.node_link_data(self.g, edges="links")
        write_json_atomic(path, data)

    @classmethod
    def load(cls, path: Path) -> tuple[KnowledgeGraph, int]:
        """The graph and the generation it was saved at (-1 when absent or unreadable)."""
        try:
            data = json.loads(Path(path).read_text())
            g = nx.node_link_graph(data, edges="links")
            return cls(g), int(g.graph.get("generation", -1))
        except (OSError, ValueError, KeyError, nx.NetworkXError) as e:
            if Path(path).exists():
                log.warning("knowledge graph %s unreadable (%s); rebuilding", path, e)
            return cls(), -1
