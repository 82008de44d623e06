"""The typer `app`, its root callback (Settings built once, logging configured), the settings holder and the option
types the commands share. Command modules import from here and from `ragqa.cli.render`; `ragqa.cli.main` imports
them to register their commands."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ragqa.cli import render
from ragqa.settings import Settings

app = typer.Typer(
    name="ragqa", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Ask questions about your documents, with cited answers; summarise long texts.",
)


class State:
    settings: Settings


state = State()

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Root of ingest/, indexes/, kg/ (RAGQA_HOME).")]
CollectionOpt = Annotated[str | None, typer.Option("--collection", "-c", help="Collection name (RAGQA_COLLECTION).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
EngineOpt = Annotated[str, typer.Option("--engine", help="local (this process) or ray (Ray Data: a local instance, "
                                        "or the cluster in RAGQA_RAY__ADDRESS; needs the ray extra).")]
ChainOpt = Annotated[str | None, typer.Option("--chain", help="auto | stuff | map_reduce | refine | map_rerank.")]
SystemOpt = Annotated[str | None, typer.Option("--system", help="An instruction for the answer (tone, language, "
                                               "length), added after ragqa's rules about citing sources.")]
# Filters: search and ask look only at the chunks every given condition allows (ragqa/filters.py)
DocOpt = Annotated[list[str] | None, typer.Option("--doc", help="Only this document (doc_id or 8+ character prefix); repeatable.")]
FileOpt = Annotated[list[str] | None, typer.Option("--file", help="Only files whose name matches this glob ('*.pdf'); repeatable.")]
PagesOpt = Annotated[str | None, typer.Option("--pages", help="Only chunks on these pages: 5, 3-7 or 3-.")]
MetaOpt = Annotated[list[str] | None, typer.Option("--meta", help="Only documents ingested with this key=value; repeatable (all must hold).")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Only documents ingested at or after this time (ISO 8601 or Unix seconds).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Only documents ingested before this time.")]


@app.callback()
def _root(
    home: HomeOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(show_path=False, console=render.err)])
    overrides = {"home": home} if home else {}
    try:
        state.settings = Settings(**overrides)
    except Exception as e:  # pydantic ValidationError: name the field and the reason
        render.error(f"invalid settings: {e}")
        raise typer.Exit(2) from None


def settings() -> Settings:
    return state.settings


def within(doc: list[str] | None, file: list[str] | None, pages: str | None, meta: list[str] | None,
           since: str | None, until: str | None):
    """The filter the options spell, or None when none was given."""
    from ragqa.filters import Filter

    flt = Filter.from_options(documents=doc or (), files=file or (), pages=pages, meta=meta or (),
                              added_after=since, added_before=until)
    return flt or None
