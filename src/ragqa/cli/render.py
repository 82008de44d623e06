"""Rich rendering for the CLI: progress bars and report tables. The core never imports rich."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragqa.types import IngestReport
from ragqa.types import Progress as IngestProgress

STATUS_STYLE = {"ok": "green", "unchanged": "dim", "failed": "red"}


@contextmanager
def ingest_progress(disable: bool = False) -> Iterator:
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
    import os

    rel = os.path.relpath(path)
    return rel if len(rel) < len(path) else path


@contextmanager
def stage_progress() -> Iterator:
    """Transient bars on stderr, one per named stage: yields `update(stage, done, total)` for the core's
    on_progress callbacks (ingest, then each mode or the answering)."""
    from rich.console import Console

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update
