"""`--engine ray` on a real local Ray instance (2 CPUs, no dashboard) with the embedded models: ingest and
summarize give exactly what the single-process run gives (same documents, chunk ids, texts, vectors and graph
rows; same summary levels and text at temperature 0)."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
import ray  # the ray extra: `make install` has it, so a missing Ray fails here instead of skipping

from conftest import fixture, make_settings
from ragqa.collection import Collection, summarize_file

PDFS = ("pdfs/pypdf/crazyones.pdf", "pdfs/pdfminer/jo.pdf",
        "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf")


@pytest.fixture(scope="module")
def local_ray():
    from ragqa import ray_engine

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # the workers inherit the environment Ray starts with
        ray_engine.start(None, 2)
        yield
    ray.shutdown()


def rows(db_path, sql: str) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(sql).fetchall()


def test_ingest_on_ray_stores_exactly_what_one_process_stores(tmp_path, local_ray):
    docs = tmp_path / "docs"
    docs.mkdir()
    for rel in PDFS:
        shutil.copy(fixture(rel), docs)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")  # fails alone, with its reason
    shutil.copy(docs / "jo.pdf", docs / "jo-again.pdf")  # the same bytes twice: one document
    colls, reports = {}, {}
    for engine in ("local", "ray"):
        coll = Collection.open("c", make_settings(tmp_path / engine), create=True)
        reports[engine] = coll.ingest([docs], engine=engine)
        colls[engine] = coll
    assert "ray" in reports["ray"].stage_seconds and "ray" not in reports["local"].stage_seconds
    statuses = {e: sorted((r.path.rsplit("/", 1)[-1], r.status, r.doc_id) for r in reports[e].files)
                for e in reports}
    assert statuses["ray"] == statuses["local"]
    assert [s for _, s, _ in statuses["ray"]].count("ok") == 3
    broken = next(r for r in reports["ray"].files if r.path.endswith("broken.pdf"))
    assert broken.status == "failed" and broken.reason

    local, on_ray = (colls[e].store.docs.path for e in ("local", "ray"))
    for sql in ("SELECT doc_id, filename, kind, pages, chunks, notes FROM documents ORDER BY doc_id",
                "SELECT id, doc_id, ordinal, page_start, page_end, char_start, char_end, text FROM chunks ORDER BY id",
                "SELECT * FROM mentions ORDER BY chunk_id, entity", "SELECT * FROM relations ORDER BY chunk_id, head"):
        assert rows(local, sql) == rows(on_ray, sql), sql
    assert rows(on_ray, "SELECT count(*) FROM chunks")[0][0] > 5
    vec_local = rows(local, "SELECT id, vector FROM chunks ORDER BY id")
    vec_ray = rows(on_ray, "SELECT id, vector FROM chunks ORDER BY id")
    for (i, a), (j, b) in zip(vec_local, vec_ray, strict=True):
        assert i == j
        np.testing.assert_allclose(np.frombuffer(a, np.float32), np.frombuffer(b, np.float32), atol=1e-6)
    assert colls["ray"].check() == []
    assert colls["ray"].stats()["vectors"] == colls["local"].stats()["vectors"]
    q = "Here's to the crazy ones"
    assert [h.chunk_id for h in colls["ray"].search(q, k=3)] == [h.chunk_id for h in colls["local"].search(q, k=3)]

    again = colls["ray"].ingest([docs], engine="ray")  # re-ingest on Ray: nothing new
    assert {r.status for r in again.files if not r.path.endswith("broken.pdf")} == {"unchanged"}


def test_summarize_on_ray_gives_the_single_process_summary(tmp_path, local_ray, monkeypatch):
    from ragqa import ray_engine

    source = fixture("long/a_tale_of_two_cities_pg98_opening.txt")
    text = source.read_text(encoding="utf-8")
    start = text.index("It was the best of times")
    book = tmp_path / "chapter.txt"
    book.write_text(text[start:start + 3300], encoding="utf-8")

    ray_batches = []
    original = ray_engine.RayLLM.complete_many

    def counting(self, batch, **kw):
        if len(batch) > 1:
            ray_batches.append(len(batch))
        return original(self, batch, **kw)

    monkeypatch.setattr(ray_engine.RayLLM, "complete_many", counting)
    summaries = {}
    for engine in ("local", "ray"):
        settings = make_settings(tmp_path / engine, llm={"model": "smollm2-135m", "n_ctx": 1024, "max_tokens": 32, "threads": 1})
        settings.cache_dir = tmp_path / engine / "cache"  # no shared summary cache: each run calls the LLM
        summaries[engine] = summarize_file(book, settings, target_words=20, engine=engine)
    local, on_ray = summaries["local"], summaries["ray"]
    assert ray_batches and ray_batches[0] == local.levels[0] > 1  # level 1 went to the Ray actors, whole
    assert on_ray.cached_calls == local.cached_calls == 0
    assert on_ray.levels == local.levels
    assert on_ray.level_texts == local.level_texts
    assert on_ray.summary == local.summary and on_ray.summary.strip()
