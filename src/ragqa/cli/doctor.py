"""`ragqa doctor`: the configuration in use and whether each part answers; exit 1 when one does not."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragqa.cli.main import app, settings

out = Console(width=None if Console().is_terminal else 160)


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Backend, model, effective context window, embedder, vector index, and their health."""
    from ragqa.collection import diagnose

    d = diagnose(settings())
    if as_json:
        out.print_json(json.dumps(d.to_dict()))
        raise typer.Exit(0 if d.healthy else 1)
    summary = Table(show_header=False, box=None)
    for key, value in (("backend", d.backend), ("model", d.model), ("context window", d.context_window),
                       ("window from", d.context_source),
                       ("prompt budget", f"{d.prompt_budget} tokens (+ {d.max_tokens} for the answer)"
                        if d.prompt_budget else None),
                       ("embedder", d.embedder), ("vector index", d.vectors)):
        summary.add_row(f"[bold]{key}[/]", "-" if value is None else str(value))
    out.print(summary)
    checks = Table("check", "", "detail")
    for c in d.checks:
        detail = c.detail + (f"\n[yellow]{c.hint}[/]" if c.hint and not c.ok else "")
        checks.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAIL[/]", detail)
    out.print(checks)
    out.print("[green]healthy[/]" if d.healthy else "[bold red]unhealthy[/]: see the failed checks above")
    raise typer.Exit(0 if d.healthy else 1)
