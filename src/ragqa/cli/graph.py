"""`ragqa graph`: show an entity's neighbourhood, export the knowledge graph."""

from __future__ import annotations

import typer

from ragqa.cli.main import app

graph_app = typer.Typer(help="Inspect and export a collection's knowledge graph.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
