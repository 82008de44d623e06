"""A ragqa collection in LlamaIndex: `RagqaRetriever` (ragqa's retrieval as a BaseRetriever), `RagqaQueryEngine`
(ragqa's chains answer; `source_nodes` are the cited chunks) and `RagqaVectorStore` (a vector store, so
`VectorStoreIndex.from_vector_store(...)` works and LlamaIndex readers' documents can be added with their
metadata). Vectors come from the collection's own embedder; `RagqaEmbedding` is that embedder for LlamaIndex.

    from ragqa.integrations.llama_index import RagqaQueryEngine
    r = RagqaQueryEngine(collection="default").query("How many employees did NIKE have?")
    r.response, [(n.metadata["document"], n.metadata["page"]) for n in r.source_nodes]
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.response.schema import Response
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from pydantic import ConfigDict, PrivateAttr

from ragqa.errors import InputError
from ragqa.filters import Filter
from ragqa.integrations.common import CollectionHandle
from ragqa.settings import Settings
from ragqa.types import Hit

PREFIX = "llamaindex"  # the source of a node added here is "llamaindex:<node_id>"
REF = "ref_doc_id"  # kept in the node's metadata: what delete(ref_doc_id) matches

MODES = {VectorStoreQueryMode.DEFAULT: "dense", VectorStoreQueryMode.HYBRID: "hybrid",
         VectorStoreQueryMode.SPARSE: "lexical", VectorStoreQueryMode.TEXT_SEARCH: "lexical"}
OPS = {FilterOperator.EQ: operator.eq, FilterOperator.NE: operator.ne, FilterOperator.GT: operator.gt,
       FilterOperator.LT: operator.lt, FilterOperator.GTE: operator.ge, FilterOperator.LTE: operator.le,
       FilterOperator.IN: lambda a, b: a in b, FilterOperator.NIN: lambda a, b: a not in b}


def chunk_node(hit: Hit, meta: dict) -> NodeWithScore:
    node = TextNode(id_=f"{hit.doc_id}:{hit.chunk_id}", text=hit.text, metadata=meta,
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.doc_id)})
    return NodeWithScore(node=node, score=float(hit.score))


class RagqaRetriever(BaseRetriever):
    """Chunks of a collection as NodeWithScore; metadata: document, page, page_end, chunk_id, doc_id, score,
    retrieval, and the metadata the document was added with. `filter` (a `ragqa.filters.Filter`) limits retrieval
    to the chunks it allows."""

    def __init__(self, collection: str = "default", *, home: str | Path | None = None,
                 settings: Settings | None = None, k: int = 4, retrieval: str | None = None,
                 filter: Filter | None = None, **kwargs: Any):
        self._handle = CollectionHandle(collection, home=home, settings=settings)
        self.k, self.retrieval, self.filter = k, retrieval, filter
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._handle.search(query_bundle.query_str, self.k, self.retrieval, self.filter)
        return [chunk_node(h, m) for h, m in zip(hits, self._handle.hit_metadata(hits), strict=True)]


class RagqaQueryEngine(CustomQueryEngine):
    """ragqa answers: retrieval, then a chain (auto by default), with the cited chunks as `source_nodes` and
    the chain and its trace (LLM calls, tokens, seconds) in `metadata`."""

    collection: str = "default"
    home: str | None = None
    k: int | None = None
    chain: str | None = None
    retrieval: str | None = None
    settings: Settings | None = None
    _handle: CollectionHandle = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._handle = CollectionHandle(self.collection, home=self.home, settings=self.settings)

    def custom_query(self, query_str: str) -> Response:
        coll = self._handle.get()
        if coll is None:
            raise InputError(f"no collection '{self.collection}' yet", hint="Ingest documents into it first.")
        answer = coll.ask(query_str, chain=self.chain, k=self.k, retrieval=self.retrieval)
        cited = coll.store.docs.hits([s.chunk_id for s in answer.sources], [s.score for s in answer.sources], "cited")
        nodes = [chunk_node(h, m) for h, m in zip(cited, self._handle.hit_metadata(cited), strict=True)]
        return Response(response=answer.answer, source_nodes=nodes,
                        metadata={"chain": answer.chain, "abstained": answer.abstained, "trace": answer.trace.to_dict()})


class RagqaEmbedding(BaseEmbedding):
    """The collection's embedder for LlamaIndex (for `VectorStoreIndex(..., embed_model=...)`): the same vectors
    the collection holds."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    _handle: CollectionHandle = PrivateAttr()

    def __init__(self, handle: CollectionHandle, **kwargs: Any):
        super().__init__(model_name=handle.settings.embedder, **kwargs)
        self._handle = handle

    def _embedder(self):
        from ragqa import backends

        coll = self._handle.get()
        return coll.embedder() if coll is not None else backends.embedder(self._handle.settings.embedder,
                                                                          self._handle.settings)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder().embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder().embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder().embed_documents(list(texts)).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class RagqaVectorStore(BasePydanticVectorStore):
    """A collection as a LlamaIndex vector store. Each node added is one ragqa document (its text split into
    chunks when longer than one), keeping its id, metadata and ref_doc_id; `delete(ref_doc_id)` removes a
    source document's nodes. Queries use `query_str` with ragqa's retrieval (DEFAULT: dense, HYBRID: hybrid,
    SPARSE/TEXT_SEARCH: lexical); `filters` (==, !=, <, >, <=, >=, in, nin on metadata; AND/OR), `doc_ids` and
    `node_ids` are applied to the ranked candidates, widening the search until k pass or none are left."""

    stores_text: bool = True
    is_embedding_query: bool = False  # ragqa embeds the query itself, with the collection's embedder
    collection: str = "default"
    home: str | None = None
    settings: Settings | None = None
    _handle: CollectionHandle = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._handle = CollectionHandle(self.collection, home=self.home, settings=self.settings)

    @property
    def client(self):
        return self._handle.get()

    def embed_model(self) -> RagqaEmbedding:
        return RagqaEmbedding(self._handle)

    def add(self, nodes: list[BaseNode], **kwargs: Any) -> list[str]:
        metas = [{**n.metadata, REF: n.ref_doc_id} if n.ref_doc_id else dict(n.metadata) for n in nodes]
        return self._handle.add(PREFIX, [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes], metas,
                                [n.node_id for n in nodes])

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        coll = self._handle.get()
        if coll is not None:
            sources = coll.store.docs.sources_with_meta(REF, ref_doc_id, PREFIX)
            self._handle.delete(PREFIX, [s.split(":", 1)[1] for s in sources])

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **kwargs: Any) -> None:
        if filters is not None:
            raise InputError("delete_nodes by filters is not supported; pass node_ids")
        self._handle.delete(PREFIX, list(node_ids or []))

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                  **kwargs: Any) -> list[BaseNode]:
        if filters is not None:
            raise InputError("get_nodes by filters is not supported; pass node_ids")
        found = self._handle.entries(PREFIX, list(node_ids or []))
        return [self._entry_node(i, row["text"], row["meta"]) for i, row in found.items()]

    @staticmethod
    def _entry_node(node_id: str, text: str, meta: dict) -> TextNode:
        meta = dict(meta)
        ref = meta.pop(REF, None)
        rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=ref)} if ref else {}
        return TextNode(id_=node_id, text=text, metadata=meta, relationships=rel)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if not query.query_str:
            raise InputError("RagqaVectorStore needs the query's text (query_str): ragqa embeds it itself")
        mode = MODES.get(query.mode)
        if mode is None:
            raise InputError(f"query mode {query.mode.value} is not supported",
                             hint=f"Use one of {', '.join(m.value for m in MODES)}.")
        k = query.similarity_top_k
        coll = self._handle.get()
        if coll is None or k <= 0:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        wanted = k
        while True:
            hits = self._handle.best_per_document(query.query_str, wanted, mode, PREFIX)
            rows = coll.store.docs.documents_by_id(list({h.doc_id for h in hits}))
            kept = []
            for hit, meta in zip(hits, self._handle.hit_metadata(hits), strict=True):
                row = rows[hit.doc_id]
                entry = self._handle.entry_id(PREFIX, row["source"])
                node = self._entry_node(entry, coll.store.docs.text_of(hit.doc_id), row["meta"]) \
                    if entry is not None else chunk_node(hit, meta).node
                if self._passes(node, query):
                    kept.append((node, float(hit.score)))
            if len(kept) >= k or len(hits) < wanted:
                break
            wanted *= 4
        kept = kept[:k]
        return VectorStoreQueryResult(nodes=[n for n, _ in kept], similarities=[s for _, s in kept],
                                      ids=[n.node_id for n, _ in kept])

    @staticmethod
    def _passes(node: TextNode, query: VectorStoreQuery) -> bool:
        if query.node_ids and node.node_id not in query.node_ids:  # None or []: no restriction
            return False
        if query.doc_ids and node.ref_doc_id not in query.doc_ids:
            return False
        return not query.filters or _matches(node.metadata, query.filters)


def _matches(meta: dict, filters: MetadataFilters) -> bool:
    results = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            results.append(_matches(meta, f))
            continue
        op = OPS.get(f.operator)
        if op is None:
            raise InputError(f"filter operator {f.operator.value} is not supported",
                             hint=f"Use one of {', '.join(o.value for o in OPS)}.")
        try:
            results.append(f.key in meta and bool(op(meta[f.key], f.value)))
        except TypeError:  # e.g. a number compared with a string: not a match
            results.append(False)
    if filters.condition == FilterCondition.OR:
        return any(results)
    if filters.condition == FilterCondition.NOT:
        return not any(results)
    return all(results)
