"""Parsing with bounded memory and time: each file is read in a worker process under an address-space limit
(`resource.setrlimit`) and a per-file timeout, so a decompression bomb or a parser that never returns fails
that file alone, with its reason, and the caller's memory stays where it was.

One worker serves a whole batch (started once, with `spawn`: no fork of a process running threads); it is
replaced after a file that killed it, exhausted its memory or ran out of time, and stopped at the end.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from ragqa.errors import LoadError
from ragqa.types import Document

log = logging.getLogger(__name__)


def _serve(conn: Connection, memory_mb: int) -> None:
    """The worker: set the limit, then load each path it is sent and send back the Document or the reason."""
    import resource

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from ragqa.load import load

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        path, kw = job
        try:
            conn.send(("ok", load(Path(path), **kw)))
        except LoadError as e:
            conn.send(("load_error", (str(e), e.reason)))
        except MemoryError:
            conn.send(("memory", None))
            return  # its heap may stay large: the next file gets a fresh worker
        except Exception as e:  # a parser bug on one file must not end the batch
            conn.send(("error", f"{type(e).__name__}: {e}"[:300]))


class IsolatedLoader:
    """`load(path, ...)` in a worker process with `memory_mb` of address space and `timeout_s` per file."""

    def __init__(self, memory_mb: int = 2048, timeout_s: float = 300.0):
        self.memory_mb, self.timeout_s = memory_mb, timeout_s
        self._proc: mp.Process | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> IsolatedLoader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.memory_mb), name="ragqa-parse", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._proc = self._conn = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
        self.close()

    def __call__(self, path: Path, *, pause: Callable[[], object] | None = None,
                 would_pause: Callable[[], bool] | None = None, **kw) -> Document:
        """As `load(path, **kw)`. While `would_pause()` says questions are being answered, the worker is
        stopped (SIGSTOP) and `pause()` (the thread budget's pause point) waits; the time stopped does not
        count against the timeout."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        assert self._conn is not None and self._proc is not None
        self._conn.send((str(path), kw))
        deadline = time.monotonic() + self.timeout_s
        while not self._conn.poll(0.1):
            if not self._proc.is_alive():
                code = self._proc.exitcode
                self.close()
                raise LoadError(_death(code, self.memory_mb), "malformed")
            if time.monotonic() > deadline:
                self._kill()
                raise LoadError(f"reading it took longer than {self.timeout_s:g} s (RAGQA_PARSE_TIMEOUT_S); "
                                "the file may be damaged or built to stall a parser", "too_large")
            if pause is not None and would_pause is not None and would_pause():
                deadline += self._paused(pause)
        try:
            kind, value = self._conn.recv()
        except EOFError:
            code = self._proc.exitcode if self._proc.join(5) is None else None
            self.close()
            raise LoadError(_death(code, self.memory_mb), "malformed") from None
        if kind == "ok":
            return value
        if kind == "load_error":
            raise LoadError(value[0], value[1])
        if kind == "memory":
            self._kill()
            raise LoadError(_memory_reason(self.memory_mb), "too_large")
        raise LoadError(f"unexpected error: {value}", "malformed")

    def _paused(self, pause: Callable[[], object]) -> float:
        assert self._proc is not None and self._proc.pid is not None
        t0 = time.monotonic()
        os.kill(self._proc.pid, signal.SIGSTOP)
        try:
            pause()
        finally:
            os.kill(self._proc.pid, signal.SIGCONT)
        return time.monotonic() - t0


def _memory_reason(memory_mb: int) -> str:
    return (f"reading it needs more than {memory_mb} MB of memory (RAGQA_PARSE_MEMORY_MB): a stream that "
            "decompresses far past the file's size, or a document too large to read here")


def _death(code: int | None, memory_mb: int) -> str:
    """Why the worker died, in words: a killed or aborted reader has most likely run out of its memory."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (f"the PDF reader died ({name}) reading it; most likely it {_memory_reason(memory_mb)[11:]}"
                if name in ("SIGKILL", "SIGABRT", "SIGSEGV", "SIGBUS") else f"the PDF reader died ({name}) reading it")
    return f"the PDF reader stopped (exit code {code}) reading it"
