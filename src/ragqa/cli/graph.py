"""`ragqa graph`: show an entity's neighbourhood (optionally as a PNG), export the knowledge graph."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragqa.cli.commands import CollectionOpt, JsonOpt
from ragqa.cli.main import app, settings

out = Console(width=None if Console().is_terminal else 160)
graph_app = typer.Typer(help="Inspect and export a collection's knowledge graph.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")


def _pages(pages: list) -> str:
    return "; ".join(f"{doc} p.{page}" for doc, page in pages[:4]) + (" …" if len(pages) > 4 else "")


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
    if as_json:
        out.print_json(json.dumps(shown))
        return
    out.print(f"[bold]{shown['label']}[/] ({shown['type']}): {shown['mentions']} mentions in "
              f"{shown['documents']} documents; about it: {_pages(shown['about']) or 'no page'}", highlight=False)
    table = Table("neighbour", "link", "chunks", "supporting pages")
    for n in shown["neighbours"]:
        table.add_row(n["label"], n["relation"], str(n["weight"]), _pages(n["pages"]))
    out.print(table)
    if png:
        out.print(f"wrote {png}")


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
    stats = coll.graph().stats()
    out.print(f"wrote {written}: {stats['nodes']} entities, {stats['edges']} links")
