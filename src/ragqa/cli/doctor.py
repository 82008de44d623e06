"""`ragqa doctor`: the configuration in use and whether each part answers; exit 1 when one does not."""

from __future__ import annotations

import typer

from ragqa.cli import render
from ragqa.cli.app import JsonOpt, app, settings


@app.command()
def doctor(as_json: JsonOpt = False) -> None:
    """Backend, model, effective context window, embedder, vector index, and their health."""
    from ragqa.collection import diagnose

    d = diagnose(settings())
    render.diagnosis(d, as_json=as_json)
    raise typer.Exit(0 if d.healthy else 1)
