"""The real llama-index-core against real collections with the embedded MiniLM (and SmolLM2 for answers):
documents from SimpleDirectoryReader into a RagqaVectorStore, VectorStoreIndex.from_vector_store over it,
filters, hybrid mode, delete by ref_doc_id, the retriever, and the query engine's cited source nodes."""

from __future__ import annotations

import shutil

import pytest
from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from conftest import fixture, make_settings
from ragqa.collection import Collection
from ragqa.errors import InputError
from ragqa.integrations.llama_index import RagqaQueryEngine, RagqaRetriever, RagqaVectorStore

TALE, CRAZY_TXT = "a_tale_of_two_cities_pg98_opening.txt", "crazyones.txt"


@pytest.fixture
def reader_documents(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(fixture(f"long/{TALE}"), folder)
    shutil.copy(fixture(f"pdfs/pypdf/{CRAZY_TXT}"), folder)
    return SimpleDirectoryReader(str(folder)).load_data()


def test_vector_store_index_over_a_collection(tmp_path, reader_documents):
    store = RagqaVectorStore(collection="li", settings=make_settings(tmp_path / "home"))
    VectorStoreIndex.from_documents(reader_documents, storage_context=StorageContext.from_defaults(vector_store=store),
                                    embed_model=store.embed_model())
    index = VectorStoreIndex.from_vector_store(store, embed_model=store.embed_model())
    nodes = index.as_retriever(similarity_top_k=2).retrieve("Here's to the crazy ones, the misfits, the rebels")
    assert nodes[0].node.metadata["file_name"] == CRAZY_TXT  # the reader's metadata, kept
    assert nodes[0].node.ref_doc_id == next(d.doc_id for d in reader_documents if d.metadata["file_name"] == CRAZY_TXT)
    assert "rebels" in nodes[0].node.get_content()

    only_tale = MetadataFilters(filters=[MetadataFilter(key="file_name", value=TALE, operator=FilterOperator.EQ)])
    found = store.query(VectorStoreQuery(query_str="the crazy ones", similarity_top_k=3, filters=only_tale))
    assert found.nodes and {n.metadata["file_name"] for n in found.nodes} == {TALE}
    hybrid = store.query(VectorStoreQuery(query_str="best of times, worst of times", similarity_top_k=1,
                                          mode=VectorStoreQueryMode.HYBRID))
    assert hybrid.nodes[0].metadata["file_name"] == TALE
    with pytest.raises(InputError, match="not supported"):
        store.query(VectorStoreQuery(query_str="x", mode=VectorStoreQueryMode.MMR))

    crazy = next(d for d in reader_documents if d.metadata["file_name"] == CRAZY_TXT)
    store.delete(crazy.doc_id)
    left = store.query(VectorStoreQuery(query_str="the crazy ones", similarity_top_k=50))
    assert left.nodes and all(n.metadata["file_name"] == TALE for n in left.nodes)


def test_retriever_and_query_engine_cite_document_and_page(tmp_path):
    settings = make_settings(tmp_path)
    coll = Collection.open("crazy", settings, create=True)
    assert coll.ingest([fixture("pdfs/pypdf/crazyones.pdf")]).files[0].status == "ok"
    nodes = RagqaRetriever("crazy", settings=settings, k=1).retrieve("Who are the crazy ones?")
    assert [(n.node.metadata["document"], n.node.metadata["page"]) for n in nodes] == [("crazyones.pdf", 1)]

    response = RagqaQueryEngine(collection="crazy", settings=settings, chain="stuff", k=1).query("Who are the crazy ones?")
    assert response.response.strip() and response.metadata["chain"] == "stuff"
    assert [(n.node.metadata["document"], n.node.metadata["page"]) for n in response.source_nodes] == \
        [("crazyones.pdf", 1)]
    assert "rebels" in response.source_nodes[0].node.get_content()


def test_retriever_takes_a_filter(tmp_path):
    from ragqa.filters import Filter

    coll = Collection.open("two", make_settings(tmp_path), create=True)
    assert coll.ingest([fixture("pdfs/pypdf/crazyones.pdf"),
                        fixture("pdfs/pdfplumber/federal-register-2020-17221.pdf")]).failed == []
    coll.close()
    query = "the crazy ones, the misfits, the rebels"
    nodes = RagqaRetriever("two", settings=make_settings(tmp_path), k=3,
                           filter=Filter(files=("federal-register-*",))).retrieve(query)
    assert nodes and {n.node.metadata["document"] for n in nodes} == {"federal-register-2020-17221.pdf"}
