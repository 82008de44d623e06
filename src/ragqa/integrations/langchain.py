"""A ragqa collection in LangChain: `RagqaRetriever` (ragqa's hybrid and graph retrieval as a BaseRetriever) and
`RagqaVectorStore` (a VectorStore whose entries are ragqa documents, so `as_retriever()` and LangChain's chains
work on a collection). Both embed with the collection's own embedder, the one its manifest records.

    from ragqa.integrations.langchain import RagqaRetriever
    docs = RagqaRetriever(collection="default", k=4).invoke("How many employees did NIKE have?")
    docs[0].metadata  # {"document": "nke-10k-2023.pdf", "page": 11, "chunk_id": ..., "score": ..., ...}
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, PrivateAttr

from ragqa.errors import InputError
from ragqa.filters import Filter
from ragqa.integrations.common import CollectionHandle
from ragqa.settings import Settings

PREFIX = "langchain"  # the source of an entry added here is "langchain:<id>"


class RagqaRetriever(BaseRetriever):
    """Chunks of a collection as Documents: `metadata` has document, page, page_end, chunk_id, doc_id, score,
    retrieval (the retriever that found it) and the metadata the document was added with. `k` and `filter` (a
    `ragqa.filters.Filter`: documents, file globs, pages, metadata, ingestion time) may also be given per call:
    `retriever.invoke(query, k=2, filter=Filter(files=("*.pdf",)))`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: str = "default"
    home: str | None = None
    k: int = 4
    retrieval: str | None = None  # dense | lexical | hybrid | graph | auto; None: the settings' (auto)
    filter: Filter | None = None  # only the chunks it allows, applied inside retrieval
    settings: Settings | None = None
    _handle: CollectionHandle = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._handle = CollectionHandle(self.collection, home=self.home, settings=self.settings)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        hits = self._handle.search(query, int(kwargs.get("k", self.k)), kwargs.get("retrieval", self.retrieval),
                                   kwargs.get("filter", self.filter))
        return [Document(page_content=h.text, metadata=m, id=f"{h.doc_id}:{h.chunk_id}")
                for h, m in zip(hits, self._handle.hit_metadata(hits), strict=True)]


class RagqaEmbeddings(Embeddings):
    """The collection's embedder as LangChain Embeddings (vectors L2-normalised)."""

    def __init__(self, handle: CollectionHandle):
        self._handle = handle

    def _embedder(self):
        from ragqa import backends

        coll = self._handle.get()
        return coll.embedder() if coll is not None else backends.embedder(self._handle.settings.embedder,
                                                                          self._handle.settings)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return np.asarray(self._embedder().embed_documents(list(texts))).tolist()

    def embed_query(self, text: str) -> list[float]:
        return np.asarray(self._embedder().embed_query(text)).tolist()


class RagqaVectorStore(VectorStore):
    """A collection as a LangChain VectorStore. Each text added here is one ragqa document (split into chunks
    when longer than one), with its id and metadata kept as given; adding an id again replaces it. Searches
    return each document once, as it was added; a chunk of a file ingested by ragqa (a PDF) comes back as
    that chunk, with ragqa's metadata (document, page, ...). `similarity_search` is dense retrieval; pass
    `retrieval="hybrid"` (or lexical, graph, auto) for ragqa's others."""

    def __init__(self, collection: str = "default", *, home: str | Path | None = None,
                 settings: Settings | None = None):
        self._handle = CollectionHandle(collection, home=home, settings=settings)

    @property
    def embeddings(self) -> Embeddings:
        return RagqaEmbeddings(self._handle)

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                  **kwargs: Any) -> list[str]:
        return self._handle.add(PREFIX, texts, metadatas, list(ids) if ids is not None else None)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            raise InputError("delete needs the ids to remove", hint="To remove a whole collection, use the CLI.")
        self._handle.delete(PREFIX, list(ids))
        return True

    def get_by_ids(self, ids: list[str], /) -> list[Document]:
        found = self._handle.entries(PREFIX, list(ids))
        return [Document(page_content=found[i]["text"], metadata=found[i]["meta"], id=i) for i in ids if i in found]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        hits = self._handle.best_per_document(query, k, kwargs.get("retrieval", "dense"), PREFIX)
        coll = self._handle.get()
        if coll is None:
            return []
        rows = coll.store.docs.documents_by_id(list({h.doc_id for h in hits}))
        out = []
        for hit, meta in zip(hits, self._handle.hit_metadata(hits), strict=True):
            row = rows[hit.doc_id]
            entry = self._handle.entry_id(PREFIX, row["source"])
            if entry is not None:  # added here: returned as it was added
                doc = Document(page_content=coll.store.docs.text_of(hit.doc_id), metadata=row["meta"], id=entry)
            else:
                doc = Document(page_content=hit.text, metadata=meta, id=f"{hit.doc_id}:{hit.chunk_id}")
            out.append((doc, float(hit.score)))
        return out

    def _select_relevance_score_fn(self):
        return lambda score: score  # dense scores are cosine similarities already

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None = None, metadatas: list[dict] | None = None,
                   *, ids: list[str] | None = None, collection: str = "default", home: str | Path | None = None,
                   settings: Settings | None = None, **kwargs: Any) -> RagqaVectorStore:
        """A store over `collection` with `texts` added. Vectors come from the collection's embedder, so
        `embedding` must be None (or this store's own RagqaEmbeddings)."""
        if embedding is not None and not isinstance(embedding, RagqaEmbeddings):
            raise InputError("RagqaVectorStore embeds with its collection's embedder; pass embedding=None",
                             hint="Choose the embedder with RAGQA_EMBEDDER before the collection's first text.")
        store = cls(collection, home=home, settings=settings)
        store.add_texts(texts, metadatas, ids=ids)
        return store
