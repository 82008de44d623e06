"""What both integrations share: a collection opened once per thread, and hits as metadata."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from ragqa.collection import Collection
from ragqa.errors import InputError
from ragqa.filters import Filter
from ragqa.settings import Settings, check_collection_name
from ragqa.types import Hit, Text


class CollectionHandle:
    """A named collection, opened on first use in each thread (SQLite connections belong to their thread, and
    LangChain's and LlamaIndex's async methods run the sync ones in executor threads)."""

    def __init__(self, collection: str = "default", *, home: str | Path | None = None,
                 settings: Settings | None = None):
        self.name = check_collection_name(collection)
        self.settings = settings or (Settings(home=Path(home)) if home else Settings())
        self._local = threading.local()

    def exists(self) -> bool:
        return (self.settings.collection_dir(self.name) / "docstore.sqlite").exists()

    def get(self, create: bool = False) -> Collection | None:
        """The collection, or None when it does not exist yet (nothing added): searches find nothing."""
        coll = getattr(self._local, "coll", None)
        if coll is not None and coll.dir.exists() and not coll.store.discarded:
            return coll
        if not self.exists() and not create:
            return None
        self._local.coll = Collection.open(self.name, self.settings, create=create)
        return self._local.coll

    def search(self, query: str, k: int, mode: str | None, within: Filter | None = None) -> list[Hit]:
        coll = self.get()
        if coll is None or k <= 0:
            return []
        return coll.search(query, k=k, mode=mode, within=within)

    def hit_metadata(self, hits: list[Hit]) -> list[dict]:
        """ragqa's fields (document, page, chunk, score) and the metadata the document was added with."""
        coll = self.get()
        metas = coll.store.docs.metas(list({h.doc_id for h in hits})) if coll is not None else {}
        return [{**metas.get(h.doc_id, {}), "doc_id": h.doc_id, "document": h.filename, "page": h.page_start,
                 "page_end": h.page_end, "chunk_id": h.chunk_id, "score": float(h.score), "retrieval": h.source}
                for h in hits]

    # -- entries added through an integration: one document each, under a source that carries their id --------
    def add(self, prefix: str, texts: Iterable[str], metadatas: list[dict] | None, ids: list[str | None]) -> list[str]:
        """Each text as one document with its id (a uuid when none) and metadata; the same id again replaces
        it (the same id and text: unchanged). Returns the ids."""
        texts = list(texts)
        metadatas = list(metadatas or [{} for _ in texts])
        ids = [i if i is not None else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        if not len(texts) == len(metadatas) == len(ids):
            raise InputError(f"{len(texts)} texts, {len(metadatas)} metadatas and {len(ids)} ids: give one each")
        if not texts:
            return []
        report = self.get(create=True).ingest_texts(
            [Text(title=str(i), text=t, source=f"{prefix}:{i}", meta=dict(m or {}))
             for t, m, i in zip(texts, metadatas, ids, strict=True)])
        failed = [f for f in report.files if f.status == "failed"]
        if failed:
            raise InputError(f"{len(failed)} of {len(texts)} texts not added: "
                             + "; ".join(f"{f.path}: {f.reason}" for f in failed[:3]))
        return [str(i) for i in ids]

    def entries(self, prefix: str, ids: list[str]) -> dict[str, dict]:
        """id -> its document row (with `text`), for the ids that exist."""
        coll = self.get()
        if coll is None:
            return {}
        docs = coll.store.docs
        rows = docs.documents_from([f"{prefix}:{i}" for i in ids])
        return {r["source"].split(":", 1)[1]: {**r, "text": docs.text_of(r["doc_id"])} for r in rows}

    def entry_id(self, prefix: str, source: str) -> str | None:
        return source.split(":", 1)[1] if source.startswith(prefix + ":") else None

    def delete(self, prefix: str, ids: list[str]) -> int:
        coll = self.get()
        if coll is None:
            return 0
        doc_ids = [r["doc_id"] for r in coll.store.docs.documents_from([f"{prefix}:{i}" for i in ids])]
        if doc_ids:
            with coll.store.writer():
                coll.store.delete_documents(doc_ids)
        return len(doc_ids)

    def best_per_document(self, query: str, k: int, mode: str | None, prefix: str) -> list[Hit]:
        """The k best results: an entry added under `prefix` once (its best chunk: a long entry is split into
        several), each chunk of any other document (a PDF ingested by ragqa) on its own."""
        wanted = max(k * 3, k + 10)
        while True:
            hits = self.search(query, wanted, mode)
            coll = self.get()
            rows = coll.store.docs.documents_by_id(list({h.doc_id for h in hits})) if coll is not None else {}
            seen, out = set(), []
            for h in hits:
                entry = rows.get(h.doc_id, {}).get("source", "").startswith(prefix + ":")
                if not entry or h.doc_id not in seen:
                    seen.add(h.doc_id)
                    out.append(h)
            if len(out) >= k or len(hits) < wanted:
                return out[:k]
            wanted *= 4
