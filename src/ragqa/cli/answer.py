"""Answering commands: ask and summarize."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ragqa.cli import render
from ragqa.cli.app import (
    ChainOpt,
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
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    chain: ChainOpt = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="Chunks to retrieve (RAGQA_K).")] = None,
    collection: CollectionOpt = None,
    retrieval: Annotated[str | None, typer.Option(help="dense | lexical | hybrid | graph | auto (default from settings: auto).")] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print tokens as they come.")] = True,
    as_json: JsonOpt = False,
    doc: DocOpt = None, file: FileOpt = None, pages: PagesOpt = None, meta: MetaOpt = None, since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Answer QUESTION from a collection, citing document and page."""
    from ragqa.collection import Collection

    flt = within(doc, file, pages, meta, since, until)
    coll = Collection.open(collection, settings())
    on_token = render.token_printer() if stream and not as_json else None
    answer = coll.ask(question, chain=chain, k=k, retrieval=retrieval, on_token=on_token, within=flt)
    if as_json:
        render.plain_json(answer.to_dict())
        return
    render.answer(answer, streamed=on_token is not None)


@app.command()
def summarize(
    files: Annotated[list[Path], typer.Argument(help=".txt, .md or .pdf files.", exists=True, dir_okay=False)],
    chain: Annotated[str, typer.Option("--chain", help="map_reduce | refine | stuff.")] = "map_reduce",
    target_words: Annotated[int, typer.Option("--target-words", min=10, help="Length of the final summary.")] = 200,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the summaries here (Markdown, or JSON with --json).")] = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = "local",
) -> None:
    """Summarise long texts recursively (chunks -> levels -> one). Interrupted runs resume from the cache."""
    from ragqa.collection import summarize_file

    results = []
    for path in files:
        with render.summary_progress(path.name, disable=as_json and out_file is None) as progress:
            summary = summarize_file(path, settings(), chain=chain, target_words=target_words, on_progress=progress,
                                     engine=engine)
        results.append({"file": str(path), **summary.to_dict()})
        if not as_json:
            render.summary(path.name, summary)
    if as_json:
        render.plain_json(results)
    if out_file:
        if out_file.suffix == ".json":
            out_file.write_text(json.dumps(results, ensure_ascii=False, indent=1))
        else:
            out_file.write_text("\n\n".join(f"# {Path(r['file']).name}\n\n{r['summary']}\n\nLevels: "
                                            f"{' -> '.join(map(str, r['levels']))}" for r in results) + "\n")
