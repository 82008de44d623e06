"""`--engine ray`: the same ingest and summarize pipelines, with their heavy steps on Ray Data.

ingest: load + split + graph extraction (`map_batches` tasks, one file per batch) -> embedding (`map_batches` on
actors that load the embedder once) -> this process commits each document in file order, as the single-process
path does: one docstore transaction per document, the vector index and graph told through the same Sink, so the
chunk ids, vectors and graph come out the same.

summarize: `RayLLM` is the LLM protocol with `complete_many` (every map step: the chunk summaries of a level, the
collapse groups) run on LLM actors; token counting, budgets, levels and the cache stay here, so the levels and,
with temperature 0, the summary are those of the single-process run.

A local Ray instance by default; `RAGQA_RAY__ADDRESS` joins a cluster whose nodes have ragqa installed and see
the input files at the same paths. Ray is an optional extra: `pip install 'ragqa[ray]'`.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ragqa.errors import ConfigError, LoadError
from ragqa.ingest import commit_document
from ragqa.llm.base import Completion, Message
from ragqa.load import file_sha256, load
from ragqa.types import FileResult, IngestReport, Progress

log = logging.getLogger(__name__)


def start(address: str | None = None, num_cpus: int | None = None):
    """Join (or start) Ray once per process; results of Ray Data come back in input order."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigError("--engine ray needs Ray", hint="pip install 'ragqa[ray]'") from e
    if not ray.is_initialized():
        # a local instance needs 2 CPUs at least: extraction tasks and an embedding actor run side by side
        ray.init(address=address, num_cpus=None if address else max(2, num_cpus or 2), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # same commit order as one process: same chunk ids
    ctx.enable_progress_bars = False
    return ray


# -- ingest ----------------------------------------------------------------------------------------------
_worker_cache: dict[str, object] = {}


def _once(key: str, factory: Callable[[], object]):
    """One splitter/extractor per worker process and run (tasks reuse their processes)."""
    if key not in _worker_cache:
        _worker_cache[key] = factory()
    return _worker_cache[key]


def _extract(batch: dict, *, run: str, make_splitter, make_extractor, known: frozenset, password, max_mb: int,
             max_pages: int) -> dict:
    """load -> split -> graph extraction, as ingest_files' extraction thread does it; a bad file is a row."""
    splitter = _once(f"{run}:splitter", make_splitter)
    extractor = _once(f"{run}:extractor", make_extractor)
    items = []
    for raw in batch["path"]:
        path = Path(raw)
        source = str(path.resolve())
        try:
            try:
                doc_id = file_sha256(path.read_bytes()) if path.stat().st_size <= max_mb * 2**20 else None
            except OSError:
                doc_id = None
            if doc_id and doc_id in known:
                item = ("unchanged", str(path), source, doc_id)
            else:
                doc = load(path, password=password, max_mb=max_mb, max_pages=max_pages)
                chunks = splitter.split(doc)
                mentions, triples = extractor.extract(chunks, title=doc.title)
                item = ("doc", str(path), source, doc, chunks, mentions, triples)
        except LoadError as e:
            item = ("failed", str(path), source, str(e))
        except Exception as e:  # a parser bug on one file must not end the batch
            item = ("failed", str(path), source, f"unexpected error: {type(e).__name__}: {e}"[:300])
        items.append(pickle.dumps(item))
    return {"i": batch["i"], "item": np.array(items, dtype=object)}


class _Embed:
    """A Ray actor: the embedder loaded once, then every document's chunks embedded in one call (the same
    internal batches as the single-process path, so the same vectors)."""

    def __init__(self, make_embedder):
        self.embedder = make_embedder()

    def __call__(self, batch: dict) -> dict:
        vectors = []
        for raw in batch["item"]:
            item = pickle.loads(raw)
            if item[0] == "doc":
                vecs = self.embedder.embed_documents([c.text for c in item[4]])
                vectors.append(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
            else:
                vectors.append(b"")
        return {**batch, "vectors": np.array(vectors, dtype=object)}


def ingest_files_ray(
    files: Iterable[Path], *, collection: str, store, sink, make_splitter, make_extractor, make_embedder,
    dim: int, password: str | None = None, max_mb: int = 200, max_pages: int = 5000, embed_actors: int = 1,
    on_progress: Callable[[Progress], None] | None = None, checkpoint_seconds: float = 30.0,
) -> IngestReport:
    """ingest_files with extraction and embedding on Ray; the commits stay here, under the caller's lock."""
    import ray.data

    files = [Path(f) for f in files]
    report = IngestReport(collection=collection)
    progress = Progress(files_total=len(files))
    notify = on_progress or (lambda p: None)
    known = set(store.list_doc_ids())
    t_start = time.perf_counter()
    if not files:
        sink.checkpoint(final=True)
        return report
    ds = ray.data.from_items([{"i": i, "path": str(p)} for i, p in enumerate(files)],
                             override_num_blocks=len(files))
    ds = ds.map_batches(_extract, batch_size=1, fn_kwargs={
        "run": uuid.uuid4().hex, "make_splitter": make_splitter, "make_extractor": make_extractor,
        "known": frozenset(known), "password": password, "max_mb": max_mb, "max_pages": max_pages})
    ds = ds.map_batches(_Embed, batch_size=1, fn_constructor_kwargs={"make_embedder": make_embedder},
                        concurrency=embed_actors)
    last_checkpoint = time.monotonic()
    try:
        for row in ds.iter_rows():
            item = pickle.loads(row["item"])
            kind, path = item[0], Path(item[1])
            progress.current = path.name
            if kind == "unchanged":
                report.files.append(FileResult(str(path), "unchanged", "same content already ingested", item[3]))
            elif kind == "failed":
                report.files.append(FileResult(str(path), "failed", item[3]))
            elif item[3].doc_id in known:  # the same bytes twice in one run: the first copy was just committed
                report.files.append(FileResult(str(path), "unchanged", "same content already ingested",
                                               item[3].doc_id))
            else:
                vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dim)
                result = commit_document(item, vectors, store=store, sink=sink)
                known.add(result.doc_id)
                report.files.append(result)
                progress.pages_done += result.pages
                progress.chunks_done += result.chunks
            progress.files_done += 1
            notify(progress)
            if time.monotonic() - last_checkpoint > checkpoint_seconds:
                sink.checkpoint()
                last_checkpoint = time.monotonic()
    finally:
        sink.checkpoint(final=True)
    report.seconds = time.perf_counter() - t_start
    report.stage_seconds = {"ray": report.seconds}
    return report


# -- summarize -------------------------------------------------------------------------------------------
class _Complete:
    """A Ray actor holding one LLM (a loaded GGUF, or a client of the shared server)."""

    def __init__(self, make_llm):
        self.llm = make_llm()

    def __call__(self, batch: dict) -> dict:
        kw = json.loads(batch["kw"][0])
        done = self.llm.complete_many([json.loads(m) for m in batch["messages"]], **kw)
        return {"i": batch["i"], "text": np.array([c.text for c in done], dtype=object),
                "prompt_tokens": np.array([c.prompt_tokens for c in done]),
                "completion_tokens": np.array([c.completion_tokens for c in done]),
                "finish_reason": np.array([c.finish_reason for c in done], dtype=object)}


class RayLLM:
    """The LLM protocol with the map step (`complete_many`) on Ray actors, each group of prompts in order on one
    actor; everything else (the window, token counts, single calls, streaming) answered by the local LLM."""

    def __init__(self, llm, make_llm: Callable[[], object], actors: int = 1):
        self._llm, self._make_llm, self.actors = llm, make_llm, max(1, actors)
        self.ray_batches = 0  # map steps that went to Ray (tests and logs)

    def __getattr__(self, name: str):
        return getattr(self._llm, name)

    @property
    def name(self) -> str:
        return self._llm.name

    @property
    def context_window(self) -> int:
        return self._llm.context_window

    @property
    def supports_json(self) -> bool:
        return self._llm.supports_json

    def count_tokens(self, text: str) -> int:
        return self._llm.count_tokens(text)

    def count_messages(self, messages: list[Message]) -> int:
        return self._llm.count_messages(messages)

    def complete(self, messages: list[Message], **kw) -> Completion:
        return self._llm.complete(messages, **kw)

    def stream(self, messages: list[Message], **kw):
        return self._llm.stream(messages, **kw)

    def complete_many(self, batch: list[list[Message]], **kw) -> list[Completion]:
        if len(batch) <= 1:
            return self._llm.complete_many(batch, **kw)
        import ray.data

        per_actor = math.ceil(len(batch) / self.actors)
        ds = ray.data.from_items([{"i": i, "messages": json.dumps(m), "kw": json.dumps(kw)}
                                  for i, m in enumerate(batch)],
                                 override_num_blocks=math.ceil(len(batch) / per_actor))
        rows = ds.map_batches(_Complete, batch_size=per_actor, fn_constructor_kwargs={"make_llm": self._make_llm},
                              concurrency=self.actors).take_all()
        self.ray_batches += 1
        rows.sort(key=lambda r: r["i"])
        if len(rows) != len(batch):
            raise RuntimeError(f"Ray returned {len(rows)} completions for {len(batch)} prompts")
        return [Completion(str(r["text"]), int(r["prompt_tokens"]), int(r["completion_tokens"]),
                           str(r["finish_reason"])) for r in rows]
