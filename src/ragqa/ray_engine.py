"""`--engine ray`: the same ingest and summarize pipelines, with their heavy steps on Ray Data.

ingest: the pipeline's prepare step (`map_batches` tasks, one file per batch) -> embedding (`map_batches` on
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
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import numpy as np

from ragqa.errors import ConfigError
from ragqa.ingest import Committer, Prepared, prepare_file
from ragqa.llm.base import Completion, Message
from ragqa.load import load
from ragqa.types import IngestReport, Progress

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
    """The pipeline's prepare step (load -> split -> graph extraction) on a Ray worker; a bad file is a row."""
    splitter = _once(f"{run}:splitter", make_splitter)
    extractor = _once(f"{run}:extractor", make_extractor)
    read = partial(load, password=password, max_mb=max_mb, max_pages=max_pages)
    items = [pickle.dumps(prepare_file(Path(raw), known=known, splitter=splitter, extractor=extractor, read=read,
                                       max_mb=max_mb))
             for raw in batch["path"]]
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
            if isinstance(item, Prepared):
                vecs = self.embedder.embed_documents([c.text for c in item.chunks])
                vectors.append(np.ascontiguousarray(vecs, dtype=np.float32).tobytes())
            else:
                vectors.append(b"")
        return {**batch, "vectors": np.array(vectors, dtype=object)}


def ingest_files_ray(
    files: Iterable[Path], *, collection: str, store, sink, make_splitter, make_extractor, make_embedder,
    dim: int, password: str | None = None, max_mb: int = 200, max_pages: int = 5000, embed_actors: int = 1,
    on_progress: Callable[[Progress], None] | None = None, checkpoint_seconds: float = 30.0,
    same_name_under: str | None = None, english_only_embedder: str | None = None, meta: dict | None = None,
) -> IngestReport:
    """The pipeline with prepare and embed on Ray; the commits stay here (the same Committer), under the
    caller's lock."""
    import ray.data

    files = [Path(f) for f in files]
    committer = Committer(collection=collection, store=store, sink=sink, files_total=len(files),
                          on_progress=on_progress, checkpoint_seconds=checkpoint_seconds,
                          same_name_under=same_name_under, english_only_embedder=english_only_embedder,
                          meta=meta)
    if not files:
        return committer.finish()
    ds = ray.data.from_items([{"i": i, "path": str(p)} for i, p in enumerate(files)],
                             override_num_blocks=len(files))
    ds = ds.map_batches(_extract, batch_size=1, fn_kwargs={
        "run": uuid.uuid4().hex, "make_splitter": make_splitter, "make_extractor": make_extractor,
        "known": frozenset(committer.known), "password": password, "max_mb": max_mb, "max_pages": max_pages})
    ds = ds.map_batches(_Embed, batch_size=1, fn_constructor_kwargs={"make_embedder": make_embedder},
                        concurrency=embed_actors)

    def vectors_of(row: dict) -> Callable[[Prepared], np.ndarray]:
        def vectors(item: Prepared) -> np.ndarray:
            committer.progress.chunks_done += len(item.chunks)
            return np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dim)
        return vectors

    try:
        for row in ds.iter_rows():
            committer.take(pickle.loads(row["item"]), vectors_of(row))
    finally:
        report = committer.finish()
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
