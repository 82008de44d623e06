"""The thread budget: one place that decides how many threads the LLM gets and when batch work must wait.

llama.cpp's worker threads meet at a barrier after every layer; when one of them is descheduled because another
process holds its core, every token waits (measured: SmolLM2 fell from 58 to 0.3 tokens/s at 2 threads beside a
busy core). So:

- a question (`interactive`) takes a lease; batch work (ingestion, summaries) takes a `background` lease and
  calls `yield_to_interactive()` between slices, pausing while any question is being answered;
- the LLM's thread count is chosen per call: the whole budget minus the cores background work still holds
  and minus the threads of LLMs generating in other processes (an `llm` lease per generation), so never
  more than the cores that are really free.

Leases are small files under one folder, so two ragqa processes on the machine (`ragqa serve` and a CLI
`ragqa ingest`) see each other's work. A lease whose process died is ignored and removed.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_seq = itertools.count()
LLM_LINGER = 10.0  # seconds an LLM's lease still counts after its last generation


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ThreadBudget:
    def __init__(self, total: int, lease_dir: Path):
        self.total = max(1, total)
        self.lease_dir = Path(lease_dir)
        self.lease_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.Lock()
        self.waited_seconds = 0.0  # background time spent paused for questions (observability, tests)
        self.pauses = 0

    # -- leases ---------------------------------------------------------------------------------------------
    @contextmanager
    def _lease(self, kind: str, threads: int) -> Iterator[Path]:
        path = self.lease_dir / f"{kind}-{os.getpid()}-{next(_seq)}.lease"
        path.write_text(str(threads))
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def interactive(self, threads: int = 1):
        """Held while a question is answered (retrieval + LLM)."""
        return self._lease("interactive", threads)

    def background(self, threads: int):
        """Held by batch work for as long as it runs; `threads` is what it keeps busy while not paused."""
        return self._lease("background", threads)

    @contextmanager
    def generating(self, threads: int) -> Iterator[Path]:
        """Held by an LLM while it generates, so an LLM in another process counts these cores as taken (two
        llama.cpp processes at full threads on two cores is the collapse above). The lease lingers for
        `LLM_LINGER` seconds after the call: a process between two calls of a chain still counts, or the
        other would take every core for its next call, and a generation cannot give threads back mid-prompt."""
        path = self.lease_dir / f"llm-{os.getpid()}.lease"
        path.write_text(str(threads))
        try:
            yield path
        finally:
            try:
                path.write_text(f"idle {path.read_text().split()[-1]}")
            except (OSError, IndexError):
                pass

    def leases(self, kind: str) -> list[tuple[int, int]]:
        """(pid, threads) of live leases of one kind, machine-wide."""
        out = []
        for path in self.lease_dir.glob(f"{kind}-*.lease"):
            try:
                pid = int(path.name.split("-")[1].split(".")[0])
                text = path.read_text().split()
                threads = int(text[-1]) if text else 0
                idle_for = time.time() - path.stat().st_mtime if text[:1] == ["idle"] else 0.0
            except (ValueError, OSError, IndexError):
                continue
            if not _alive(pid):
                path.unlink(missing_ok=True)
                continue
            if idle_for > LLM_LINGER:
                continue
            out.append((pid, threads))
        return out

    # -- decisions -------------------------------------------------------------------------------------------
    def llm_threads(self, configured: int | None = None) -> int:
        """Threads for the next generation: what is set explicitly, else the budget minus running background
        work that is not paused for us (a background lease counts until its holder reaches a pause point)."""
        if configured:
            return configured
        busy = sum(threads for _, threads in self.leases("background"))
        busy += sum(threads for pid, threads in self.leases("llm") if pid != os.getpid())
        return max(1, self.total - busy)

    def yield_to_interactive(self, max_wait: float = 60.0, poll: float = 0.05) -> float:
        """Called by batch work between slices: wait while questions are being answered, at most `max_wait`
        seconds per call so a stream of questions slows batch work down but never starves it."""
        if not self.leases("interactive"):
            return 0.0
        t0 = time.monotonic()
        self.pauses += 1
        while self.leases("interactive") and time.monotonic() - t0 < max_wait:
            time.sleep(poll)
        waited = time.monotonic() - t0
        self.waited_seconds += waited
        return waited


class BackgroundWork:
    """What batch code holds. Its lease advertises the threads its stages are running right now (extraction: 1,
    an embedding slice: the embedder's threads), and its pause points take a stage off the lease while it waits
    for questions to finish."""

    def __init__(self, budget: ThreadBudget | None, embed_threads: int = 1):
        self.budget = budget
        self.embed_threads = embed_threads
        self.waited_seconds = 0.0
        self._active: dict[str, int] = {}
        self._mutex = threading.Lock()
        self._cm = None
        self._lease: Path | None = None

    def __enter__(self) -> BackgroundWork:
        if self.budget is not None:
            self._cm = self.budget.background(0)
            self._lease = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)

    def _publish(self) -> None:
        if self._lease is not None:
            self._lease.write_text(str(sum(self._active.values())))

    @contextmanager
    def active(self, stage: str, threads: int) -> Iterator[None]:
        with self._mutex:
            self._active[stage] = threads
            self._publish()
        try:
            yield
        finally:
            with self._mutex:
                self._active.pop(stage, None)
                self._publish()

    def would_pause(self) -> bool:
        """Whether a pause point reached now would wait (questions are being answered)."""
        return self.budget is not None and bool(self.budget.leases("interactive"))

    def pause_point(self, stage: str = "extract") -> float:
        """Between pages or slices: while questions are answered, this stage holds no threads and waits."""
        if self.budget is None or not self.budget.leases("interactive"):
            return 0.0
        with self._mutex:
            held = self._active.pop(stage, None)
            self._publish()
        try:
            waited = self.budget.yield_to_interactive()
        finally:
            with self._mutex:
                if held is not None:
                    self._active[stage] = held
                self._publish()
        with self._mutex:
            self.waited_seconds += waited
        return waited
