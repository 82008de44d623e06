"""The `ragqa` command: builds Settings once, configures logging, and turns RagqaError into one clear line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ragqa.errors import RagqaError
from ragqa.settings import Settings

app = typer.Typer(
    name="ragqa", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Ask questions about your documents, with cited answers; summarise long texts.",
)


class State:
    settings: Settings


state = State()

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Root of ingest/, indexes/, kg/ (RAGQA_HOME).")]


@app.callback()
def _root(
    home: HomeOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(show_path=False, console=_stderr())])
    overrides = {"home": home} if home else {}
    try:
        state.settings = Settings(**overrides)
    except Exception as e:  # pydantic ValidationError: name the field and the reason
        _fail(f"invalid settings: {e}", code=2)


def _stderr():
    from rich.console import Console

    return Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    _stderr().print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    return state.settings


def main() -> None:
    from ragqa.cli import answer, commands, doctor, evaluate, graph, models, serve  # noqa: F401  registers them

    try:
        app()
    except RagqaError as e:
        _stderr().print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        sys.exit(130)
    except Exception as e:
        if os.environ.get("RAGQA_DEBUG"):
            raise
        _stderr().print(f"[bold red]error:[/] {type(e).__name__}: {e} (set RAGQA_DEBUG=1 for the traceback)",
                        highlight=False)
        sys.exit(1)
