"""The VectorIndex protocol and its FAISS implementation.

The FAISS file is derived from the docstore (which keeps every vector), saved atomically and stamped with
the docstore generation; `sync` reconciles a stale or missing file by id, so a crash can only ever cost
a rebuild, never a wrong answer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from ragqa.fsio import fsync_replace, read_json, temp_beside, write_json_atomic

log = logging.getLogger(__name__)

IVF_TRAIN_MAX = 100_000  # k-means sample: 40+ points per centroid (FAISS warns below 39), seconds not minutes
# Below this exact search answers in a few ms on 2 cores; above it `auto` takes IVF: measured on 1M chunks of real
# text (bench/scale.py) it built in 43 s where HNSW took 377 s, and it found 0.94 of the exact top 10 at 1/16 of
# its lists where HNSW (M=32, efSearch 128) found 0.80; it also removes vectors, which HNSW cannot.
APPROXIMATE_ABOVE = 50_000
IVF_PROBE_SHARE = 8  # nprobe = nlist / 8: recall@10 >= 0.95 at 1M (bench/scale.py sweeps the share)


class VectorIndex(Protocol):
    kind: str

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray) -> int: ...
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) best first, padded with id -1; `allowed` (sorted chunk ids): only those may be returned."""
        ...
    def ids(self) -> np.ndarray: ...
    def save(self, path: Path, generation: int) -> None: ...
    def __len__(self) -> int: ...


def choose_kind(requested: str, n_vectors: int) -> str:
    if requested != "auto":
        return requested
    return "ivf" if n_vectors >= APPROXIMATE_ABOVE else "flat"


def ivf_lists(n_vectors: int) -> int:
    """4 * sqrt(N) inverted lists (FAISS's guideline is 4-16 * sqrt(N)), at most 4096."""
    return max(1, min(4096, int(4 * np.sqrt(max(n_vectors, 1)))))


def training_size(n_vectors: int) -> int:
    """How many vectors k-means trains on: all of a small collection, else a sample of at least 40 per list."""
    return min(n_vectors, max(IVF_TRAIN_MAX, 40 * ivf_lists(n_vectors)))


class FaissIndex:
    """IndexIDMap2 so ids are docstore chunk ids and deletes go by id."""

    def __init__(self, dim: int, kind: str = "flat", threads: int = 1, train: np.ndarray | None = None,
                 n_vectors: int | None = None):
        """IVF trains on `train` (a sample of the collection's vectors, or all of them) and sizes its lists for
        `n_vectors` (default: as many as `train` holds)."""
        import faiss

        faiss.omp_set_num_threads(threads)
        self.dim, self.kind = dim, kind
        if kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 80
            inner.hnsw.efSearch = 128
        elif kind == "ivf":
            nlist = ivf_lists(n_vectors or (0 if train is None else len(train)))
            quantizer = faiss.IndexFlatIP(dim)
            inner = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            if train is None or len(train) < nlist:
                raise ValueError("an IVF index needs training vectors")
            if len(train) > (cap := max(IVF_TRAIN_MAX, 40 * nlist)):  # k-means on all of 1M vectors: many minutes
                train = train[np.random.default_rng(0).choice(len(train), cap, replace=False)]
            inner.train(np.ascontiguousarray(train, dtype=np.float32))
            inner.nprobe = max(1, nlist // IVF_PROBE_SHARE)
        else:
            raise ValueError(f"unknown index type {kind!r}")
        self._inner = inner
        self.index = faiss.IndexIDMap2(inner)

    @property
    def supports_remove(self) -> bool:
        return self.kind != "hnsw"

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        if not len(ids):
            return 0
        if not self.supports_remove:
            raise NotImplementedError("HNSW cannot remove vectors; rebuild")
        return self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))

    def ids(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0 or (allowed is not None and not len(allowed)):
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        k = min(k, len(self))
        if allowed is None:
            return order_ties(*self.index.search(queries, k))
        scores, ids = self.index.search(queries, k, params=self._restricted(allowed))
        return order_ties(scores, ids)

    def _restricted(self, allowed: np.ndarray):
        """Search parameters that let only `allowed` ids through. A graph or list search skips what the filter
        refuses but still walks the same graph or lists, so it looks wider the rarer the allowed ids are:
        HNSW's efSearch and IVF's nprobe grow with the share filtered out (flat stays exact)."""
        import faiss

        sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        widen = len(self) / max(1, len(allowed))
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=sel, efSearch=int(min(4096, 128 * widen)))
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=sel, nprobe=int(min(self._inner.nlist, self._inner.nprobe * widen)))
        return faiss.SearchParameters(sel=sel)

    def save(self, path: Path, generation: int) -> None:
        """Temp file + fsync + rename, then the stamp the same way: a reader sees old or new, never half."""
        import faiss

        path = Path(path)
        tmp = temp_beside(path)
        faiss.write_index(self.index, str(tmp))
        fsync_replace(tmp, path)
        write_json_atomic(stamp_path(path), {"generation": generation, "kind": self.kind, "count": len(self)})

    @classmethod
    def load(cls, path: Path, threads: int = 1) -> FaissIndex:
        import faiss

        faiss.omp_set_num_threads(threads)
        stamp = read_stamp(path)
        obj = cls.__new__(cls)
        obj.index = faiss.read_index(str(path))
        obj._inner = faiss.downcast_index(obj.index.index)
        obj.dim = obj.index.d
        obj.kind = stamp.get("kind", "flat")
        if obj.kind == "hnsw":
            obj._inner.hnsw.efSearch = 128
        if obj.kind == "ivf":  # today's share, for a file written with another
            obj._inner.nprobe = max(1, obj._inner.nlist // IVF_PROBE_SHARE)
        return obj


def order_ties(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best first, equal scores (identical chunk texts) in id order: FAISS leaves ties in heap order, and every
    backend must rank alike for retrieval to be reproducible."""
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(scores, order, -1), np.take_along_axis(ids, order, -1)


def stamp_path(path: Path) -> Path:
    return Path(path).with_suffix(".stamp.json")


def read_stamp(path: Path) -> dict:
    return read_json(stamp_path(path), {})
