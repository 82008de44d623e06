"""Collection commands: ingest, search, stats, delete, config."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ragqa.cli import render
from ragqa.cli.app import (
    CollectionOpt,
    DocOpt,
    EngineOpt,
    FileOpt,
    JsonOpt,
    MetaOpt,
    PagesOpt,
    SinceOpt,
    UntilOpt,
    app,
    settings,
    within,
)


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, folders or globs (default: HOME/ingest).")] = None,
    collection: CollectionOpt = None,
    password: Annotated[str | None, typer.Option(help="Password for encrypted PDFs.")] = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = "local",
    meta: Annotated[list[str] | None, typer.Option("--meta", help="key=value stored with every document this ingest adds (search and ask filter on it); repeatable.")] = None,
) -> None:
    """Add documents to a collection: PDFs, .txt and .md. Unchanged files are skipped; changed ones replaced."""
    from ragqa.collection import Collection
    from ragqa.filters import parse_meta

    s = settings()
    targets = paths or [str(s.ingest_dir)]
    tags = dict(parse_meta(meta or ()))
    coll = Collection.open(collection, s, create=True)
    with render.ingest_progress(disable=as_json) as on_progress:
        report = coll.ingest(targets, password=password, on_progress=on_progress, engine=engine, meta=tags)
    render.ingest_report(report, coll.dir, targets, as_json=as_json)
    raise typer.Exit(1 if report.failed else 0)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many chunks.")] = 5,
    collection: CollectionOpt = None,
    retrieval: Annotated[str | None, typer.Option(help="dense | lexical | hybrid | graph | auto (default from settings).")] = None,
    as_json: JsonOpt = False,
    doc: DocOpt = None, file: FileOpt = None, pages: PagesOpt = None, meta: MetaOpt = None, since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Print the chunks that best match QUERY, with document, page and score."""
    from ragqa.collection import Collection

    flt = within(doc, file, pages, meta, since, until)
    hits = Collection.open(collection, settings()).search(query, k=k, mode=retrieval, within=flt)
    render.hits(hits, as_json=as_json)


@app.command()
def stats(
    collection: CollectionOpt = None,
    documents: Annotated[bool, typer.Option("--documents", help="List the documents too.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Verify docstore, vectors and graph agree (exit 1 if not); note derived files behind the docstore.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Counts for a collection (or all collections)."""
    from ragqa.collection import Collection, list_collections

    s = settings()
    names = [collection] if collection else list_collections(s)
    if not names:
        render.no_collections(s.indexes_dir)
        return
    rows = []
    problems_found = False
    for name in names:
        coll = Collection.open(name, s)
        row = coll.stats()
        if documents:
            row["documents_list"] = coll.documents()
        if check:
            row["notes"] = coll.derived_files()  # before check(), which reads (and so reconciles) them
            row["problems"] = coll.check()
            problems_found |= bool(row["problems"])
        rows.append(row)
    render.stats(rows, documents=documents, as_json=as_json)
    raise typer.Exit(1 if problems_found else 0)


@app.command()
def delete(
    document: Annotated[str, typer.Argument(help="doc_id (or a unique 8+ character prefix) or file name.")],
    collection: CollectionOpt = None,
) -> None:
    """Remove a document from the docstore, the vector index and the knowledge graph."""
    from ragqa.collection import Collection

    for d in Collection.open(collection, settings()).delete(document):
        render.deleted(d)


@app.command()
def config(as_json: JsonOpt = False) -> None:
    """Print the effective settings (defaults < ragqa.toml < RAGQA_* environment < flags)."""
    data = json.loads(settings().model_dump_json())
    if data.get("llm", {}).get("api_key") not in (None, "", "EMPTY"):
        data["llm"]["api_key"] = "***"
    if data.get("vectors", {}).get("qdrant_api_key"):
        data["vectors"]["qdrant_api_key"] = "***"
    if data.get("server", {}).get("api_keys"):
        data["server"]["api_keys"] = {f"***{i}": v for i, v in enumerate(data["server"]["api_keys"].values(), 1)}
    if data.get("pdf_password"):
        data["pdf_password"] = "***"
    render.config(data, as_json=as_json)
