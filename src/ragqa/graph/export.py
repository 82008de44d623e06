"""The knowledge graph out of ragqa: GraphML and node-link JSON files, and a PNG of one entity's neighbourhood."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx

from ragqa.errors import InputError
from ragqa.fsio import save_figure, write_json_atomic
from ragqa.graph.kg import KnowledgeGraph


def _flat(g: nx.Graph) -> nx.Graph:
    """GraphML holds scalars only: per-document chunk lists become JSON strings; order is stable (sorted)."""
    out = nx.Graph()
    for node in sorted(g.nodes):
        a = g.nodes[node]
        out.add_node(node, label=a.get("label", node), type=a.get("type", ""), mentions=int(a.get("mentions", 0)),
                     documents=len(a.get("docs", {})),
                     docs=json.dumps(a.get("docs", {}), sort_keys=True),
                     about=json.dumps(a.get("about", {}), sort_keys=True))
    for u, v in sorted(tuple(sorted(e)) for e in g.edges):
        a = g.edges[u, v]
        out.add_edge(u, v, label=a.get("label", ""), weight=int(a.get("weight", 0)),
                     docs=json.dumps(a.get("docs", {}), sort_keys=True))
    return out


def export(kg: KnowledgeGraph, path: Path, fmt: str | None = None) -> Path:
    """Writes GraphML (.graphml) or node-link JSON (.json); `fmt` overrides the suffix."""
    path = Path(path)
    fmt = fmt or ("graphml" if path.suffix.lower() == ".graphml" else "json")
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = _flat(kg.g)
    if fmt == "graphml":
        tmp = path.with_name(path.name + ".tmp")
        nx.write_graphml(flat, tmp)
        tmp.replace(path)
    elif fmt == "json":
        write_json_atomic(path, nx.node_link_data(flat, edges="links"))
    else:
        raise InputError(f"unknown graph format '{fmt}'", hint="Use graphml or json.")
    return path


def draw_neighbourhood(center: str, neighbours: list[dict], path: Path, *, title: str = "") -> Path:
    """A star of the entity and its neighbours, edge width by weight. Needs matplotlib (ragqa[eval])."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise InputError("the PNG needs matplotlib", hint="pip install 'ragqa[eval]'") from e
    g = nx.Graph()
    g.add_node(center)
    for n in neighbours:
        g.add_edge(center, n["label"], weight=n["weight"], kind=n["relation"])
    pos = nx.spring_layout(g, seed=7, k=1.2 / max(1, len(g)) ** 0.5)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    widths = [0.6 + 2.4 * d["weight"] / max(1, max(n["weight"] for n in neighbours)) for *_, d in g.edges(data=True)]
    colours = {"mentions": "tab:blue", "mentioned by": "tab:green", "co-occurs": "tab:gray"}
    nx.draw_networkx_edges(g, pos, ax=ax, width=widths,
                           edge_color=[colours.get(d["kind"], "tab:gray") for *_, d in g.edges(data=True)])
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=[900 if n == center else 250 for n in g],
                           node_color=["tab:orange" if n == center else "#dde7f3" for n in g])
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=8)
    for label, colour in colours.items():
        ax.plot([], [], color=colour, label=label)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or center)
    ax.axis("off")
    return save_figure(fig, path)
