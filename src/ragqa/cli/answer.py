"""Answering commands: ask and summarize."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragqa.cli.commands import CollectionOpt, EngineOpt, JsonOpt
from ragqa.cli.main import app, settings

out = Console(width=None if Console().is_terminal else 160)

ChainOpt = Annotated[str | None, typer.Option("--chain", help="auto | stuff | map_reduce | refine | map_rerank.")]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    chain: ChainOpt = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="Chunks to retrieve (RAGQA_K).")] = None,
    collection: CollectionOpt = None,
    retrieval: Annotated[str | None, typer.Option(help="dense | lexical | hybrid | graph | auto (default from settings: auto).")] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print tokens as they come.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION from a collection, citing document and page."""
    from ragqa.collection import Collection

    coll = Collection.open(collection, settings())
    live = stream and not as_json and out.is_terminal
    answer = coll.ask(question, chain=chain, k=k, retrieval=retrieval,
                      on_token=(lambda t: out.print(t, end="", markup=False, highlight=False)) if live else None)
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))  # noqa: T201 - the command's output
        return
    if live:
        out.print()
    else:
        out.print(answer.answer, markup=False, highlight=False)
    out.print()
    out.print("[bold]Sources[/]")
    for i, s in enumerate(answer.sources, 1):
        out.print(f"  [{i}] {s.document}, p. {s.page}  [dim](chunk {s.chunk_id})[/]  {s.snippet[:110]}",
                  highlight=False)
    t = answer.trace.totals()
    out.print(f"[dim]{answer.chain} | {t['calls']} LLM calls, {t['prompt_tokens']} prompt + "
              f"{t['completion_tokens']} completion tokens, {t['seconds']:.1f}s | model {answer.detail.get('model')}[/]")


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
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=Console(stderr=True), disable=as_json and out_file is None)
        tasks: dict[str, int] = {}
        with bar:
            def progress(level: str, done: int, total: int, _bar=bar, _tasks=tasks, _name=path.name) -> None:
                if level not in _tasks:
                    _tasks[level] = _bar.add_task(f"{_name}: {level}", total=total)
                _bar.update(_tasks[level], completed=done, total=total)

            summary = summarize_file(path, settings(), chain=chain, target_words=target_words, on_progress=progress,
                                     engine=engine)
        results.append({"file": str(path), **summary.to_dict()})
        if not as_json:
            out.rule(path.name)
            out.print(summary.summary, markup=False, highlight=False)
            t = summary.trace.totals()
            out.print(f"[dim]levels {' -> '.join(map(str, summary.levels))} | {t['calls']} LLM calls "
                      f"({summary.cached_calls} from cache), {t['prompt_tokens']} prompt + {t['completion_tokens']} "
                      f"completion tokens, {t['seconds']:.1f}s[/]")
    if as_json:
        print(json.dumps(results, ensure_ascii=False, indent=1))  # noqa: T201
    if out_file:
        if out_file.suffix == ".json":
            out_file.write_text(json.dumps(results, ensure_ascii=False, indent=1))
        else:
            out_file.write_text("\n\n".join(f"# {Path(r['file']).name}\n\n{r['summary']}\n\nLevels: "
                                            f"{' -> '.join(map(str, r['levels']))}" for r in results) + "\n")
