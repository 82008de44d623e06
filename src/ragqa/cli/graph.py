"""`ragqa graph`: show an entity's neighbourhood (optionally as a PNG), export the knowledge graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ragqa.cli import render
from ragqa.cli.app import CollectionOpt, JsonOpt, app, settings

graph_app = typer.Typer(help="Inspect and export a collection's knowledge graph.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")


@graph_app.command("show")
def show(
    entity: Annotated[str, typer.Argument(help="Entity name, any case (e.g. 'Analytical Engine').")],
    collection: CollectionOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Most neighbours listed.")] = 20,
    png: Annotated[Path | None, typer.Option("--png", help="Also draw the neighbourhood to this PNG.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The entity, the pages about it, and its neighbours with the pages that support each link."""
    from ragqa.collection import Collection

    coll = Collection.open(collection, settings())
    shown = coll.graph_show(entity, limit=limit)
    if png:
        coll.graph_png(entity, png, limit=limit)
    render.graph_show(shown, as_json=as_json)
    if png and not as_json:
        render.wrote(png)


@graph_app.command("export")
def export(
    path: Annotated[Path, typer.Argument(help="Output file: .graphml (GraphML) or .json (node-link JSON).")],
    collection: CollectionOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="graphml | json (default: from the suffix).")] = None,
) -> None:
    """Write the whole graph (entities, links, and per document the chunks behind each)."""
    from ragqa.collection import Collection

    coll = Collection.open(collection, settings())
    written = coll.graph_export(path, fmt)
    stats = coll.stats()
    render.graph_exported(written, {"nodes": stats["graph_nodes"], "edges": stats["graph_edges"]})
