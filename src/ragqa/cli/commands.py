"""Collection commands: ingest, search, stats, delete, config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragqa.cli.main import app, settings
from ragqa.cli.render import ingest_progress, report_table

out = Console(width=None if Console().is_terminal else 160)

CollectionOpt = Annotated[str | None, typer.Option("--collection", "-c", help="Collection name (RAGQA_COLLECTION).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
EngineOpt = Annotated[str, typer.Option("--engine", help="local (this process) or ray (Ray Data: a local instance, "
                                        "or the cluster in RAGQA_RAY__ADDRESS; needs the ray extra).")]


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, folders or globs (default: HOME/ingest).")] = None,
    collection: CollectionOpt = None,
    password: Annotated[str | None, typer.Option(help="Password for encrypted PDFs.")] = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = "local",
) -> None:
    """Add documents to a collection: PDFs, .txt and .md. Unchanged files are skipped; changed ones replaced."""
    from ragqa.collection import Collection

    s = settings()
    targets = paths or [str(s.ingest_dir)]
    coll = Collection.open(collection, s, create=True)
    with ingest_progress(disable=as_json) as on_progress:
        report = coll.ingest(targets, password=password, on_progress=on_progress, engine=engine)
    if as_json:
        out.print_json(json.dumps({"collection": report.collection, "seconds": round(report.seconds, 2),
                                   "stages": report.stage_seconds,
                                   "files": [vars(f) for f in report.files]}))
    else:
        out.print(report_table(report))
        out.print(f"{report.pages} pages, {report.chunks} chunks in {report.seconds:.1f}s; "
                  f"{len(report.failed)} failed. Collection '{report.collection}' at {coll.dir}")
    if not report.files:
        out.print(f"[yellow]no supported files under {', '.join(targets)}[/]")
    raise typer.Exit(1 if report.failed else 0)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many chunks.")] = 5,
    collection: CollectionOpt = None,
    retrieval: Annotated[str | None, typer.Option(help="dense | lexical | hybrid | graph | auto (default from settings).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the chunks that best match QUERY, with document, page and score."""
    from ragqa.collection import Collection

    hits = Collection.open(collection, settings()).search(query, k=k, mode=retrieval)
    if as_json:
        out.print_json(json.dumps([{"document": h.filename, "page": h.page_start, "page_end": h.page_end,
                                    "chunk_id": h.chunk_id, "score": h.score, "text": h.text} for h in hits]))
        return
    table = Table("#", "document", "page", "score", "text", show_lines=True)
    for i, h in enumerate(hits, 1):
        pages = str(h.page_start) if h.page_start == h.page_end else f"{h.page_start}-{h.page_end}"
        snippet = " ".join(h.text.split())
        table.add_row(str(i), h.filename, pages, f"{h.score:.4f}", snippet[:300] + ("…" if len(snippet) > 300 else ""))
    out.print(table)


@app.command()
def stats(
    collection: CollectionOpt = None,
    documents: Annotated[bool, typer.Option("--documents", help="List the documents too.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Verify docstore, vectors and graph agree.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Counts for a collection (or all collections)."""
    from ragqa.collection import Collection, list_collections

    s = settings()
    names = [collection] if collection else list_collections(s)
    if not names:
        out.print(f"no collections under {s.indexes_dir}; run `ragqa ingest` first")
        return
    rows = []
    problems_found = False
    for name in names:
        coll = Collection.open(name, s)
        row = coll.stats()
        if documents:
            row["documents_list"] = coll.documents()
        if check:
            row["problems"] = coll.check()
            problems_found |= bool(row["problems"])
        rows.append(row)
    if as_json:
        out.print_json(json.dumps(rows))
    else:
        for row in rows:
            table = Table(title=f"collection {row['collection']}", show_header=False)
            for key, value in row.items():
                if key not in ("documents_list", "collection"):
                    table.add_row(key, str(value))
            out.print(table)
            if documents:
                docs = Table("doc_id", "file", "pages", "chunks", "notes")
                for d in row["documents_list"]:
                    docs.add_row(d["doc_id"][:12], d["filename"], str(d["pages"]), str(d["chunks"]),
                                 "; ".join(d["notes"])[:80])
                out.print(docs)
    raise typer.Exit(1 if problems_found else 0)


@app.command()
def delete(
    document: Annotated[str, typer.Argument(help="doc_id (or a unique 8+ character prefix) or file name.")],
    collection: CollectionOpt = None,
) -> None:
    """Remove a document from the docstore, the vector index and the knowledge graph."""
    from ragqa.collection import Collection

    for d in Collection.open(collection, settings()).delete(document):
        out.print(f"deleted {d['filename']} ({d['doc_id'][:12]}, {d['chunks']} chunks)")


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
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table("setting", "value", "environment variable")

    def rows(prefix: str, obj: dict) -> None:
        for key, value in obj.items():
            if isinstance(value, dict) and key in ("llm", "server", "vectors", "ray"):
                rows(f"{prefix}{key}.", value)
            else:
                env = "RAGQA_" + (prefix.replace(".", "__") + key).upper()
                table.add_row(prefix + key, str(value), env)

    rows("", data)
    out.print(table)


_ = Path  # typer resolves annotations at runtime
