"""The Qdrant vector index (embedded mode, real qdrant-client) behind the VectorIndex protocol: it ranks like
FAISS, persists across processes, is rebuilt or reconciled from the docstore like FAISS, and a collection on it
answers exactly as one on FAISS."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_settings
from ragqa import backends
from ragqa.collection import Collection
from ragqa.index.qdrant import QdrantIndex, QdrantTarget
from ragqa.index.vectors import FaissIndex, read_stamp

QUERIES = ["Here's to the crazy ones, the misfits, the rebels", "What is the subject of the letter?",
           "pdflatex four pages", "Who wrote this?"]


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_protocol_ranks_like_faiss_removes_by_id_and_persists_across_processes(tmp_path):
    dim, ids = 32, np.arange(10, 210, dtype=np.int64)  # chunk ids need not start at 0 or be dense
    vecs = unit_vectors(len(ids), dim)
    target = QdrantTarget("chunks", path=tmp_path / "qdrant")
    index, faiss = QdrantIndex.create(target, dim), FaissIndex(dim)
    for ix in (index, faiss):
        ix.add(ids, vecs)
    queries = unit_vectors(5, dim, seed=1)
    q_scores, q_ids = index.search(queries, 7)
    f_scores, f_ids = faiss.search(queries, 7)
    assert q_ids.tolist() == f_ids.tolist()
    np.testing.assert_allclose(q_scores, f_scores, atol=1e-5)

    gone = ids[::3]
    assert index.remove(gone) == len(gone) and faiss.remove(gone) == len(gone)
    assert len(index) == len(faiss) == len(ids) - len(gone)
    assert index.ids().tolist() == sorted(faiss.ids().tolist())
    assert not set(gone.tolist()) & set(index.search(queries, 50)[1].ravel().tolist())
    few_scores, few_ids = index.search(queries[:1], 500)  # more than there are: all of them, no padding needed
    assert few_ids.shape == (1, len(index)) and (few_ids >= 0).all()

    index.save(tmp_path / "vectors.qdrant.json", generation=7)
    assert read_stamp(tmp_path / "vectors.qdrant.json") == {"generation": 7, "kind": "flat",
                                                              "count": len(index), "backend": "qdrant"}
    # another process opens the same folder once this one lets go (embedded mode allows one at a time)
    index.client.close()
    from ragqa.index import qdrant

    qdrant._clients.clear()
    code = ("import sys, json; from ragqa.index.qdrant import QdrantIndex, QdrantTarget; from pathlib import Path;"
            f"ix = QdrantIndex.load(QdrantTarget('chunks', path=Path({str(tmp_path / 'qdrant')!r})));"
            "print(json.dumps([len(ix), ix.dim, ix.ids().tolist()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == [len(faiss), dim, sorted(faiss.ids().tolist())]


@pytest.fixture(scope="module")
def twin_collections(tmp_path_factory):
    """The same small real PDFs ingested into a FAISS collection and a Qdrant collection."""
    from conftest import fixture

    colls = {}
    for backend in ("faiss", "qdrant"):
        home = tmp_path_factory.mktemp(backend)
        settings = make_settings(home, vectors={"backend": backend}, llm={"model": "smollm2-135m", "max_tokens": 16, "n_ctx": 2048, "threads": 1})
        coll = Collection.open("c", settings, create=True)
        report = coll.ingest([fixture(p) for p in ("pdfs/pypdf/crazyones.pdf", "pdfs/pdfminer/jo.pdf",
                              "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf")])
        assert {f.status for f in report.files} == {"ok"}
        colls[backend] = coll
    return colls


def test_a_qdrant_collection_stores_and_retrieves_exactly_what_a_faiss_one_does(twin_collections):
    faiss, qdrant = twin_collections["faiss"], twin_collections["qdrant"]
    assert (qdrant.store.dir / "vectors.qdrant.json").exists() and (qdrant.store.dir / "qdrant").is_dir()
    assert not (qdrant.store.dir / "vectors.faiss").exists()
    assert isinstance(qdrant.store.vectors(), QdrantIndex) and isinstance(faiss.store.vectors(), FaissIndex)
    assert qdrant.stats()["vectors"] == faiss.stats()["vectors"] == faiss.stats()["chunks"] > 0
    assert qdrant.check() == [] and faiss.check() == []
    for mode in ("dense", "hybrid"):
        for q in QUERIES:
            # identical chunk texts (a repeated header) tie exactly; both backends put ties in chunk-id order
            a = [(h.chunk_id, h.doc_id, h.page_start, round(h.score, 5)) for h in faiss.search(q, k=6, mode=mode)]
            b = [(h.chunk_id, h.doc_id, h.page_start, round(h.score, 5)) for h in qdrant.search(q, k=6, mode=mode)]
            assert a == b, (mode, q)


def test_a_qdrant_collection_answers_exactly_as_a_faiss_one(twin_collections):
    answers = []
    for backend in ("faiss", "qdrant"):
        coll = twin_collections[backend]
        backends.llm(coll.settings).llama.reset()  # no KV-cache reuse from the other run: same arithmetic
        answer = coll.ask("What do the crazy ones do?", chain="stuff", k=1)
        answers.append((answer.answer, [(s.document, s.page, s.chunk_id is not None) for s in answer.sources]))
    assert answers[0] == answers[1] and answers[0][1]


def test_a_stale_or_diverged_qdrant_index_is_reconciled_from_the_docstore(tmp_path, small_pdfs):
    """As after a crash between the docstore commit and the index update: a point missing, a ghost point."""
    settings = make_settings(tmp_path, vectors={"backend": "qdrant"})
    coll = Collection.open("c", settings, create=True)
    coll.ingest([small_pdfs])
    index = coll.store.vectors()
    truth = coll.store.docs.chunk_ids()
    index.remove(truth[:2])
    index.add(np.array([10**9]), unit_vectors(1, index.dim))
    stamp = coll.store.vectors_path.with_suffix(".stamp.json")
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "generation": 0}))
    reopened = Collection.open("c", settings)
    assert reopened.check() == []
    assert reopened.store.vectors().ids().tolist() == truth.tolist()

    # switching backends needs no migration: the index is derived, so it is built from the docstore
    as_faiss = Collection.open("c", make_settings(tmp_path))
    assert as_faiss.check() == [] and sorted(as_faiss.store.vectors().ids().tolist()) == truth.tolist()
