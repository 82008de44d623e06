"""One collection's storage room: the docstore (the record of truth) and its manifest, the writer lock, and the
two derived stores, the vector index and the knowledge graph, kept in step with the docstore.

The derived files are stamped with the docstore generation. A stale one is reconciled by id (or rebuilt) when
it is next read, so a crash between a commit and a save costs a rebuild, never a wrong answer. Everything
configurable comes in as plain arguments (the folder, the graph file, a `VectorFactory`), so this module reads
no settings and imports nothing above the index layer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from ragqa.errors import EmbedderMismatch
from ragqa.fsio import read_json, write_json_atomic
from ragqa.graph.kg import KnowledgeGraph
from ragqa.index.docstore import DocStore
from ragqa.index.vectors import VectorIndex, choose_kind, read_stamp, training_size

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VectorFactory:
    """How a collection's vector index is opened and created (FAISS file, or a Qdrant collection)."""

    file: str  # the file in the collection folder that holds the index or describes it, with its stamp
    load: Callable[[str], VectorIndex]  # kind -> the existing index (raises when absent or unreadable)
    new: Callable[[int, str, np.ndarray | None, int], VectorIndex]  # (dim, kind, training sample, vectors) -> empty
    shared: bool = False  # other processes read it too (Qdrant): it changes only under the writer lock


class CollectionStore:
    def __init__(self, name: str, folder: Path, kg_path: Path, vectors: VectorFactory, *, dim: Callable[[], int],
                 index_type: str = "auto"):
        """`dim` gives the embedder's dimension, asked only to build a vector index before a manifest exists;
        `index_type` is the requested index kind, until the manifest records the collection's own."""
        self.name, self.dir, self.kg_path, self.factory = name, folder, kg_path, vectors
        self._dim, self.index_type = dim, index_type
        self.docs = DocStore(folder / "docstore.sqlite")
        self._vectors: VectorIndex | None = None
        self._vectors_generation = -1
        self._graph: KnowledgeGraph | None = None
        self._graph_generation = -1
        self._writing = False  # this object holds the writer lock
        self.discarded = False  # its first ingest committed nothing, and its files were removed
        self._read_lock = threading.RLock()

    def close(self) -> None:
        self.docs.close()

    # -- the manifest: what the collection was built with ---------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def manifest(self) -> dict:
        return read_json(self.manifest_path, {})

    def ensure_manifest(self, embedder: str, dim: int, **built_with) -> None:
        """Write the manifest on the first ingest; refuse an embedder other than the one the vectors came from."""
        manifest = self.manifest
        if manifest:
            if manifest.get("embedder") != embedder or int(manifest.get("dim", -1)) != dim:
                raise EmbedderMismatch(
                    f"collection '{self.name}' was built with embedder '{manifest.get('embedder')}' "
                    f"(dim {manifest.get('dim')}), not '{embedder}' (dim {dim})",
                    hint="Use the same embedder (RAGQA_EMBEDDER) or another --collection.")
            return
        write_json_atomic(self.manifest_path, {"collection": self.name, "embedder": embedder, "dim": dim,
                                               **built_with})

    # -- one writer at a time ---------------------------------------------------------------------------------
    @contextmanager
    def writer(self) -> Iterator[None]:
        """The collection's write lock (a file lock: one writer across processes); readers never wait for it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.dir / ".write.lock", thread_local=False)  # the collection's, not a thread's
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("collection %s is being written by another process; waiting", self.name)
            lock.acquire()
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
            lock.release()

    def _writer_busy(self) -> bool:
        lock = FileLock(self.dir / ".write.lock", thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        return False

    # -- the derived vector index -----------------------------------------------------------------------------
    @property
    def vectors_path(self) -> Path:
        return self.dir / self.factory.file

    def vectors(self) -> VectorIndex:
        """The vector index in step with the docstore: loaded, reconciled by id when stale, or rebuilt."""
        with self._read_lock:
            generation = self.docs.generation
            if self._vectors is not None and self._vectors_generation == generation:
                return self._vectors
            index = self._vectors
            if index is None and self.vectors_path.exists():
                try:
                    stamp = read_stamp(self.vectors_path)
                    index = self.factory.load(stamp.get("kind", "flat"))
                    if stamp.get("generation") == generation:
                        self._vectors, self._vectors_generation = index, generation
                        return index
                except Exception as e:  # unreadable file: derived, so rebuild
                    log.warning("vector index unreadable (%s); rebuilding from the docstore", e)
                    index = None
            self._vectors = self._reconcile(index)
            self._vectors_generation = generation
            return self._vectors

    def _reconcile(self, index: VectorIndex | None) -> VectorIndex:
        if self.factory.shared and not self._writing:
            # A shared index changes only under the writer lock. While a writer holds it, read the index as the
            # writer leaves it: it adds each document after its commit.
            if index is not None and self._writer_busy():
                return index
            with self.writer():
                return self._reconcile(index)
        truth = self.docs.chunk_ids()
        manifest = self.manifest
        kind = choose_kind(manifest.get("index_type", "auto") if manifest else self.index_type, len(truth))
        if index is not None and index.kind == kind:
            have = index.ids()
            extra, missing = np.setdiff1d(have, truth), np.setdiff1d(truth, have)
            if not len(extra) or index.supports_remove:
                index.remove(extra)
                for ids, vecs in self.docs.iter_vectors(missing):
                    index.add(ids, vecs)
                log.info("vector index reconciled: -%d +%d", len(extra), len(missing))
                return index
        width = int(manifest.get("dim") or self._dim())
        train = None
        if kind == "ivf" and len(truth):  # a sample read by id: not a second copy of a million vectors in memory
            sample = np.sort(np.random.default_rng(0).choice(truth, training_size(len(truth)), replace=False))
            train = np.vstack([v for _, v in self.docs.iter_vectors(sample)])
        index = self.factory.new(width, kind, train, len(truth))
        for ids, vecs in self.docs.iter_vectors():
            index.add(ids, vecs)
        log.info("vector index rebuilt: %s, %d vectors", kind, len(index))
        return index

    # -- the derived knowledge graph --------------------------------------------------------------------------
    def graph(self) -> KnowledgeGraph:
        with self._read_lock:
            generation = self.docs.generation
            if self._graph is not None and self._graph_generation == generation:
                return self._graph
            graph, stamp = KnowledgeGraph.load(self.kg_path)
            if stamp != generation:
                graph = KnowledgeGraph()
                graph.add_rows(self.docs.mentions(), self.docs.relations())
            self._graph, self._graph_generation = graph, generation
            return graph

    # -- writing ------------------------------------------------------------------------------------------------
    def save_derived(self) -> None:
        generation = self.docs.generation
        self.vectors().save(self.vectors_path, generation)
        self.graph().save(self.kg_path, generation)

    def sink(self) -> DerivedSink:
        """What the ingestion pipeline tells after each commit (call under `writer()`)."""
        return DerivedSink(self, self.vectors(), self.graph())

    def delete_documents(self, doc_ids: list[str]) -> None:
        """Each document out of the docstore (one transaction each), the vector index and the graph."""
        sink = self.sink()
        for doc_id in doc_ids:
            mentions, relations = self.docs.mentions(doc_id), self.docs.relations(doc_id)
            sink.removed(doc_id, self.docs.delete_document(doc_id), mentions, relations)
        self.save_derived()

    def discard(self) -> None:
        """Remove the collection's files (docstore, manifest, derived stores); call under `writer()` on an
        empty collection. The object is unusable afterwards."""
        import shutil

        self.docs.close()
        self.discarded = True
        for path in (self.kg_path, self.kg_path.with_suffix(".stamp.json")):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _in_step(self) -> None:
        self._vectors_generation = self._graph_generation = self.docs.generation

    # -- reading --------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        graph = self.graph().stats()
        stamp = read_stamp(self.vectors_path)
        return {"collection": self.name, **self.docs.counts(), "graph_nodes": graph["nodes"],
                "graph_edges": graph["edges"], "embedder": self.manifest.get("embedder"),
                "dim": self.manifest.get("dim"), "index_type": stamp.get("kind"), "vectors": stamp.get("count"),
                "generation": self.docs.generation, "path": str(self.dir)}

    def derived_files(self) -> list[str]:
        """What the derived files on disk say before they are read: missing, or behind the docstore (after a
        crash between a commit and a checkpoint). Notes, not faults: each is brought in step when next read, and
        saved by the next write."""
        generation, chunks = self.docs.generation, self.docs.n_chunks()
        later = "rebuilt from the docstore when read, saved at the next write"
        notes = []
        if not self.vectors_path.exists():
            notes.append(f"no vector index file ({self.factory.file}) for {chunks} chunks: {later}")
        else:
            stamp = read_stamp(self.vectors_path)
            if stamp.get("generation") != generation:
                notes.append(f"vector index file is behind the docstore (generation {stamp.get('generation')}, "
                             f"{stamp.get('count')} vectors; the docstore: generation {generation}, {chunks} "
                             f"chunks): reconciled by id when read, saved at the next write")
        if chunks and not self.kg_path.exists():
            notes.append(f"no knowledge graph file ({self.kg_path.name}): {later}")
        elif chunks and KnowledgeGraph.load(self.kg_path)[1] != generation:
            notes.append(f"knowledge graph file is behind the docstore: {later}")
        return notes

    def check(self) -> list[str]:
        """Docstore, vector index and graph agree (tests and `ragqa stats --check`)."""
        problems = self.docs.check()
        truth = set(self.docs.chunk_ids().tolist())
        have = set(self.vectors().ids().tolist())
        if truth != have:
            problems.append(f"FAISS ids differ from chunk ids: {len(have - truth)} extra, {len(truth - have)} missing")
        graph_chunks = {c for _, data in self.graph().g.nodes(data=True) for ids in data["docs"].values() for c in ids}
        if graph_chunks - truth:
            problems.append(f"{len(graph_chunks - truth)} graph chunk references without a chunk")
        return problems


class DerivedSink:
    """Keeps the vector index and the graph in step with each docstore commit (the pipeline's `Sink`)."""

    def __init__(self, store: CollectionStore, vectors: VectorIndex, graph: KnowledgeGraph):
        self.store, self.vectors, self.graph = store, vectors, graph

    def added(self, doc_id: str, ids: list[int], vecs: np.ndarray) -> None:
        self.vectors.add(np.asarray(ids, np.int64), vecs)
        self.graph.add_rows(self.store.docs.mentions(doc_id), self.store.docs.relations(doc_id))
        self.store._in_step()

    def removed(self, doc_id: str, ids: list[int], mentions: list[tuple], relations: list[tuple]) -> None:
        if self.vectors.supports_remove:
            self.vectors.remove(np.asarray(ids, np.int64))
        else:
            self.store._vectors = None  # HNSW: rebuilt from the docstore at the next save
        self.graph.remove_document(doc_id, mentions, relations)
        self.store._in_step()

    def checkpoint(self, final: bool = False) -> None:
        self.store.save_derived()
