"""Answering commands: ask, chat and summarize."""

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
    SystemOpt,
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
    history: Annotated[Path | None, typer.Option("--history", exists=True, dir_okay=False, help="The conversation "
                       "before QUESTION: a JSON list of {role, content} (OpenAI messages; system messages become "
                       "the instruction). A follow-up is rewritten to stand alone before retrieval.")] = None,
    system: SystemOpt = None,
) -> None:
    """Answer QUESTION from a collection, citing document and page."""
    from ragqa.chains.conversation import turns
    from ragqa.collection import Collection

    flt = within(doc, file, pages, meta, since, until)
    messages = read_messages(history) if history else []
    instruction = "\n".join([*(m["content"] for m in messages if m.get("role") in ("system", "developer")),
                              *([system] if system else [])]) or None
    coll = Collection.open(collection, settings())
    on_token = render.token_printer() if stream and not as_json else None
    answer = coll.ask(question, chain=chain, k=k, retrieval=retrieval, on_token=on_token, within=flt,
                      history=turns(messages), instruction=instruction)
    if as_json:
        render.plain_json(answer.to_dict())
        return
    render.answer(answer, streamed=on_token is not None)


def read_messages(path: Path) -> list[dict]:
    from ragqa.errors import InputError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the history {path}: {e}",
                         hint='Give a JSON list like [{"role": "user", "content": "..."}, ...].') from e
    if isinstance(data, dict) and isinstance(data.get("messages"), list):  # a saved chat request
        data = data["messages"]
    if not isinstance(data, list):
        raise InputError(f"{path}: the history must be a JSON list of messages")
    return data


@app.command()
def chat(
    chain: ChainOpt = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="Chunks to retrieve (RAGQA_K).")] = None,
    collection: CollectionOpt = None,
    system: SystemOpt = None,
    save: Annotated[Path | None, typer.Option("--save", dir_okay=False, help="Write the conversation here as JSON "
                    "after every answer (reusable with `ask --history`).")] = None,
    doc: DocOpt = None, file: FileOpt = None, pages: PagesOpt = None, meta: MetaOpt = None, since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Talk with a collection: each question may follow from the ones before ("and in 2022?"); ragqa shows what
    it searched when it rewrote one. An empty line, `exit` or Ctrl-D ends."""
    from ragqa.chains.conversation import turns
    from ragqa.collection import Collection
    from ragqa.errors import RagqaError

    flt = within(doc, file, pages, meta, since, until)
    coll = Collection.open(collection, settings())
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    while True:
        question = render.read_question()
        if question is None or question.lower() in ("exit", "quit", ""):
            break
        on_token = render.token_printer()
        try:
            answer = coll.ask(question, chain=chain, k=k, on_token=on_token, within=flt, history=turns(messages),
                              instruction=system)
        except RagqaError as e:  # one failed question does not end the conversation
            render.error(str(e))
            continue
        render.rewritten(answer)
        render.answer(answer, streamed=on_token is not None)
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
        if save:
            save.write_text(json.dumps(messages, ensure_ascii=False, indent=1), encoding="utf-8")


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
