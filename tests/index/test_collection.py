"""Collections on disk: idempotent re-ingest, replace on change, delete from every store, embedder refusal,
and a kill -9 in the middle of `ragqa ingest`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import CACHE, NKE, fixture, make_settings
from ragqa.collection import Collection
from ragqa.errors import EmbedderMismatch, NotFound
from ragqa.index.vectors import read_stamp


@pytest.fixture(params=["faiss", "qdrant"])
def vector_backend(request, monkeypatch):
    """Both vector-index backends (Qdrant in embedded mode), where the test is about the vectors; Settings
    built in the test pick it up from the environment."""
    monkeypatch.setenv("RAGQA_VECTORS__BACKEND", request.param)
    return request.param


@pytest.mark.usefixtures("vector_backend")
def test_reingest_is_a_no_op_and_a_changed_file_replaces_its_chunks(tmp_path, small_pdfs):
    coll = Collection.open("c", make_settings(tmp_path), create=True)
    first = coll.ingest([small_pdfs])
    assert {f.status for f in first.files} == {"ok"}
    before = coll.stats()
    again = coll.ingest([small_pdfs])
    assert {f.status for f in again.files} == {"unchanged"}
    assert coll.stats()["chunks"] == before["chunks"] and coll.stats()["generation"] == before["generation"]

    target = small_pdfs / "crazyones.pdf"
    shutil.copy(fixture("pdfs/pypdf/toy.pdf"), target)  # same path, new content
    third = coll.ingest([target])
    assert third.files[0].status == "ok" and "replaced" in third.files[0].reason
    assert coll.stats()["documents"] == before["documents"]
    assert len(coll.store.docs.find_documents(str(target.resolve()))) == 1
    assert coll.check() == []


@pytest.mark.usefixtures("vector_backend")
def test_delete_removes_the_document_from_docstore_vectors_and_graph(tmp_path, small_pdfs):
    settings = make_settings(tmp_path)
    coll = Collection.open("c", settings, create=True)
    coll.ingest([small_pdfs])
    doc = next(d for d in coll.documents() if d["filename"] == "crazyones.pdf")
    ids = set(coll.store.docs.chunk_ids_of(doc["doc_id"]))
    entities = {m[0] for m in coll.store.docs.mentions(doc["doc_id"])}
    assert ids and entities

    coll.delete("crazyones.pdf")

    reopened = Collection.open("c", settings)  # a fresh process view: files on disk, not memory
    assert not reopened.store.docs.find_documents(doc["doc_id"])
    assert not ids & set(reopened.store.vectors().ids().tolist())
    graph_chunks = {c for _, d in reopened.store.graph().g.nodes(data=True) for v in d["docs"].values() for c in v}
    assert not ids & graph_chunks
    assert all(doc["doc_id"] not in d["docs"] for _, d in reopened.store.graph().g.nodes(data=True))
    fts = reopened.store.docs.db.execute(
        f"SELECT count(*) FROM chunks_fts WHERE rowid IN ({','.join(map(str, ids))})").fetchone()[0]
    assert fts == 0
    assert all(h.doc_id != doc["doc_id"] for h in reopened.search("crazy ones misfits rebels", k=10))
    assert reopened.check() == []
    with pytest.raises(NotFound):
        reopened.delete("crazyones.pdf")


def test_another_embedder_is_refused(tmp_path, small_pdfs):
    coll = Collection.open("c", make_settings(tmp_path), create=True)
    coll.ingest([small_pdfs / "jo.pdf"])
    # A real second embedder: the same weights under another folder name are another model to ragqa.
    from ragqa.embed.sentence_transformer import model_dir

    other = tmp_path / "other-embedder"
    shutil.copytree(model_dir("minilm"), other)
    coll2 = Collection.open("c", make_settings(tmp_path, embedder=str(other)))
    with pytest.raises(EmbedderMismatch, match="was built with embedder 'minilm'"):
        coll2.ingest([small_pdfs / "crazyones.pdf"])
    assert coll2.stats()["documents"] == 1


@pytest.mark.usefixtures("vector_backend")
def test_stale_vector_file_is_reconciled_on_open(tmp_path, small_pdfs):
    settings = make_settings(tmp_path)
    coll = Collection.open("c", settings, create=True)
    coll.ingest([small_pdfs / "jo.pdf"])
    stale = (coll.store.vectors_path.read_bytes(), coll.store.vectors_path.with_suffix(".stamp.json").read_bytes())
    coll.ingest([small_pdfs / "crazyones.pdf"])
    coll.store.vectors_path.write_bytes(stale[0])  # as if the process died before the checkpoint
    coll.store.vectors_path.with_suffix(".stamp.json").write_bytes(stale[1])
    reopened = Collection.open("c", settings)
    notes = reopened.derived_files()
    assert len(notes) == 1 and notes[0].startswith("vector index file is behind the docstore"), notes
    assert reopened.check() == []
    assert reopened.search("crazy ones", k=1)[0].filename == "crazyones.pdf"
    reopened.store.vectors_path.unlink()
    assert Collection.open("c", settings).derived_files()[0].startswith("no vector index file")
    reopened.ingest([small_pdfs / "crazyones.pdf"])  # a write (here: nothing new) saves the derived files
    assert Collection.open("c", settings).derived_files() == []


def test_kill_9_mid_ingest_leaves_a_consistent_collection_and_a_rerun_finishes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for rel in ("pdfs/pypdf/crazyones.pdf", "pdfs/pdfminer/jo.pdf", "pdfs/pypdf/999092.pdf",
                str(NKE), "pdfs/pdfplumber/federal-register-2020-17221.pdf"):
        shutil.copy(fixture(rel), docs)
    home = tmp_path / "home"
    env = {**os.environ, "RAGQA_HOME": str(home), "RAGQA_CACHE_DIR": str(CACHE)}
    cmd = [sys.executable, "-m", "ragqa", "ingest", str(docs), "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = home / "indexes" / "default" / "docstore.sqlite"
    deadline = time.monotonic() + 300
    committed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                committed = sqlite3.connect(db).execute("SELECT count(*) FROM documents").fetchone()[0]
            except sqlite3.Error:
                committed = 0
            if committed >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed; the test needs a bigger batch"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    settings = make_settings(home)
    coll = Collection.open("default", settings)
    stats = json.loads(subprocess.run([sys.executable, "-m", "ragqa", "stats", "--check", "--json"], env=env,
                                      capture_output=True, text=True, timeout=300).stdout)[0]
    in_step = coll.store.vectors_path.exists() and read_stamp(coll.store.vectors_path).get("generation") == \
        coll.store.docs.generation  # a checkpoint (every 30 s) may have come just before the kill
    assert stats["problems"] == [] and (in_step or any("vector index" in n for n in stats["notes"])), stats
    assert coll.check() == []
    partial = coll.stats()["documents"]
    assert 2 <= partial < 5

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    coll = Collection.open("default", settings)
    assert coll.stats()["documents"] == 5
    assert coll.check() == []


def test_progress_counts_a_documents_pages_before_its_chunks_are_embedded(tmp_path):
    """A job's progress never reads '0 pages, 32 chunks': a document's pages count once it has been read."""
    seen = []
    coll = Collection.open("c", make_settings(tmp_path), create=True)
    report = coll.ingest([fixture("pdfs/pypdf/crazyones.pdf"), NKE],
                         on_progress=lambda p: seen.append((p.files_done, p.pages_done, p.chunks_done)))
    assert [f.status for f in report.files] == ["ok", "ok"]
    embedding_nke = [s for s in seen if s[0] == 1 and s[2] > report.files[0].chunks]
    assert embedding_nke and all(pages == 1 + report.files[1].pages for _, pages, _ in embedding_nke)
    assert seen[-1] == (2, report.pages, report.chunks)
