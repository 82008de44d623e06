"""Qdrant behind the VectorIndex protocol: embedded (a folder in the collection, one process at a time) or a
Qdrant server, which shards and replicates the vectors across machines.

Like the FAISS file, it is derived from the docstore: point ids are docstore chunk ids, and a stamp file next
to the collection records the docstore generation it matches. Unlike FAISS it lives outside this process, so it
is `shared`: the collection changes it only under its writer lock (readers never reconcile it themselves).
DOT distance on L2-normalised vectors is FAISS's inner product, so both rank alike.
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragqa.fsio import write_json_atomic
from ragqa.index.vectors import order_ties

log = logging.getLogger(__name__)

UPSERT_BATCH = 256
SCROLL_PAGE = 4096

_clients: dict[tuple, tuple[object, threading.RLock]] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class QdrantTarget:
    """Where the vectors live: a server URL, or a local folder for embedded mode."""

    collection: str  # the Qdrant collection name
    url: str | None = None
    path: Path | None = None
    api_key: str | None = None
    shards: int = 1
    replicas: int = 1

    def describe(self) -> dict:
        return {"backend": "qdrant", "collection": self.collection,
                "location": self.url or str(self.path)}


def _client(target: QdrantTarget):
    """One client per server or folder per process: embedded mode locks its folder against a second client."""
    from qdrant_client import QdrantClient

    key = (target.url, str(target.path) if target.path else None, target.api_key)
    with _clients_lock:
        if key not in _clients:
            if target.url:
                client = QdrantClient(url=target.url, api_key=target.api_key, timeout=60)
            else:
                target.path.mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=str(target.path))
            # embedded mode is not thread-safe; a server client is, but one lock costs nothing next to HTTP
            _clients[key] = (client, threading.RLock())
        return _clients[key]


@atexit.register
def _close_clients() -> None:
    """Embedded mode flushes and unlocks its folder on close; do it before the interpreter tears down."""
    with _clients_lock:
        for client, _ in _clients.values():
            try:
                client.close()
            except Exception:  # closing at exit: nothing left to tell
                log.debug("closing a Qdrant client", exc_info=True)
        _clients.clear()


class QdrantIndex:
    shared = True
    supports_remove = True  # Qdrant deletes from its HNSW graph too

    def __init__(self, target: QdrantTarget, dim: int, kind: str):
        self.target, self.dim, self.kind = target, dim, kind
        self.client, self._lock = _client(target)
        from qdrant_client import models

        self._models = models
        # "flat" asks a server for exact search (else it answers from its HNSW graph); embedded is always exact
        self._search_params = models.SearchParams(exact=True) if kind == "flat" and target.url else None

    @classmethod
    def create(cls, target: QdrantTarget, dim: int, kind: str = "flat") -> QdrantIndex:
        """An empty Qdrant collection (dropping one of the same name): the caller fills it from the docstore."""
        index = cls(target, dim, kind)
        m = index._models
        with index._lock:
            if index.client.collection_exists(target.collection):
                index.client.delete_collection(target.collection)
            extra = {} if target.path else {"shard_number": target.shards, "replication_factor": target.replicas}
            index.client.create_collection(target.collection,
                                           vectors_config=m.VectorParams(size=dim, distance=m.Distance.DOT), **extra)
        return index

    @classmethod
    def load(cls, target: QdrantTarget, kind: str = "flat") -> QdrantIndex:
        client, lock = _client(target)
        with lock:
            if not client.collection_exists(target.collection):
                raise FileNotFoundError(f"no Qdrant collection {target.collection}")
            info = client.get_collection(target.collection)
        vectors = info.config.params.vectors
        return cls(target, int(vectors.size), kind)

    def __len__(self) -> int:
        with self._lock:
            return int(self.client.count(self.target.collection, exact=True).count)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), UPSERT_BATCH):
            batch = self._models.Batch(ids=[int(i) for i in ids[start:start + UPSERT_BATCH]],
                                       vectors=vectors[start:start + UPSERT_BATCH].tolist())
            with self._lock:
                self.client.upsert(self.target.collection, points=batch, wait=True)

    def remove(self, ids: np.ndarray) -> int:
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64)]
        if not ids:
            return 0
        with self._lock:
            self.client.delete(self.target.collection, points_selector=self._models.PointIdsList(points=ids),
                               wait=True)
        return len(ids)

    def ids(self) -> np.ndarray:
        out: list[int] = []
        offset = None
        with self._lock:
            while True:
                points, offset = self.client.scroll(self.target.collection, limit=SCROLL_PAGE, offset=offset,
                                                    with_payload=False, with_vectors=False)
                out.extend(int(p.id) for p in points)
                if offset is None:
                    break
        return np.array(sorted(out), dtype=np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, k), padded with id -1 like FAISS when fewer points exist; `allowed`
        becomes a has-id filter, which Qdrant applies inside its search."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        m = self._models
        if allowed is not None and not len(allowed):
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        where = None if allowed is None else m.Filter(must=[m.HasIdCondition(has_id=[int(i) for i in allowed])])
        requests = [m.QueryRequest(query=q.tolist(), limit=k, params=self._search_params, filter=where)
                    for q in queries]
        with self._lock:
            results = self.client.query_batch_points(self.target.collection, requests=requests)
        width = max((len(r.points) for r in results), default=0)
        scores = np.full((len(queries), width), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), width), -1, dtype=np.int64)
        for row, result in enumerate(results):
            for col, point in enumerate(result.points):
                scores[row, col], ids[row, col] = point.score, int(point.id)
        return order_ties(scores, ids)

    def save(self, path: Path, generation: int) -> None:
        """Qdrant persisted every upsert already; record where the vectors are and the generation they match."""
        from ragqa.index.vectors import stamp_path

        write_json_atomic(Path(path), {**self.target.describe(), "dim": self.dim})
        write_json_atomic(stamp_path(path), {"generation": generation, "kind": self.kind, "count": len(self),
                                             "backend": "qdrant"})
