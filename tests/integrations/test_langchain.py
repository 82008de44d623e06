"""LangChain's own conformance suites (langchain-tests) against real collections with the embedded MiniLM, and
a retriever over a real PDF."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests, VectorStoreIntegrationTests

from conftest import NKE, fixture, make_settings
from ragqa.collection import Collection
from ragqa.integrations.langchain import RagqaRetriever, RagqaVectorStore


@pytest.fixture(scope="module")
def crazy_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("lc-retriever")
    coll = Collection.open("crazy", make_settings(home), create=True)
    assert all(f.status == "ok" for f in coll.ingest([fixture("pdfs/pypdf/crazyones.pdf"),
                                                       fixture("pdfs/pdfplumber/federal-register-2020-17221.pdf")]).files)
    coll.close()
    return home


class TestRagqaRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _home(self, crazy_home):
        self.home = crazy_home

    @property
    def retriever_constructor(self):
        return RagqaRetriever

    @property
    def retriever_constructor_params(self):
        return {"collection": "crazy", "settings": make_settings(self.home)}

    @property
    def retriever_query_example(self):
        return "the crazy ones"


class TestRagqaVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path):
        yield RagqaVectorStore("lc", settings=make_settings(tmp_path))  # a fresh, empty collection per test


def test_retriever_cites_document_and_page(tmp_path):
    coll = Collection.open("nke", make_settings(tmp_path), create=True)
    coll.ingest([NKE])
    docs = RagqaRetriever(collection="nke", settings=make_settings(tmp_path), k=3,
                          retrieval="hybrid").invoke("How many employees did NIKE have as of May 31, 2023?")
    assert len(docs) == 3 and docs[0].metadata["document"] == "nke-10k-2023.pdf"
    assert any(d.metadata["page"] == 11 and "83,700" in d.page_content for d in docs)
    assert {"doc_id", "page_end", "chunk_id", "score", "retrieval"} <= set(docs[0].metadata)


def test_retriever_filters_inside_retrieval(crazy_home):
    from ragqa.filters import Filter

    retriever = RagqaRetriever(collection="crazy", settings=make_settings(crazy_home), k=3)
    query = "the crazy ones, the misfits, the rebels"
    assert retriever.invoke(query)[0].metadata["document"] == "crazyones.pdf"
    register = Filter(files=("federal-register-*",))
    docs = retriever.invoke(query, filter=register)  # per call, through LangChain's invoke
    assert docs and {d.metadata["document"] for d in docs} == {"federal-register-2020-17221.pdf"}
    fixed = RagqaRetriever(collection="crazy", settings=make_settings(crazy_home), k=3, filter=register)
    assert [d.id for d in fixed.invoke(query)] == [d.id for d in docs]
