"""Two `ragqa serve` processes (real uvicorn on 127.0.0.1) sharing one home: one collection, one job store. One
ingests while the other keeps answering; the other sees the new documents on its next request (it reloads a
collection whose docstore generation changed); a replica starting mid-job leaves the running job to its owner;
when a replica dies mid-job, the other resumes it; afterwards the docstore passes its integrity check and every
chunk has exactly one vector."""

from __future__ import annotations

import fcntl
import time

from conftest import make_settings
from ragqa.collection import Collection

from .conftest import CRAZY, Server, pdf

TOY = "pdfs/pypdf/toy.pdf"
NEW = ["pdfs/pdfminer/jo.pdf", "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf",
       "pdfs/pdfplumber/federal-register-2020-17221.pdf"]


def search(srv: Server, query: str) -> tuple[int, list[str]]:
    r = srv.client.post("/v1/search", json={"query": query, "collection": "shared", "k": 5})
    return r.status_code, [h["document"] for h in r.json().get("hits", [])] if r.status_code == 200 else []


def test_two_replicas_share_a_collection_while_one_ingests(tmp_path):
    home = tmp_path / "home"
    a = Server(home).start()
    b = None
    lock = None
    try:
        a.ingest("shared", [CRAZY])
        # Hold the collection's writer lock, as a long ingestion elsewhere would: A's job is claimed and waits.
        lock = open(home / "indexes" / "shared" / ".write.lock", "w")
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = a.upload("shared", [(p.rsplit("/", 1)[-1], pdf(p)) for p in NEW])
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert a.wait_job(job_id, until=("running",))["attempts"] == 1

        b = Server(home).start()  # a second replica starts while A's job runs: it must leave the job to A
        for srv in (a, b):  # both answer from the collection as it is
            code, docs = search(srv, "Here's to the crazy ones")
            assert code == 200 and docs and docs[0] == "crazyones.pdf"
        running = b.client.get(f"/v1/jobs/{job_id}").json()  # the job store is shared: B sees A's job
        assert running["state"] == "running" and running["attempts"] == 1 and running["notes"] == []

        fcntl.flock(lock, fcntl.LOCK_UN)  # A ingests now; B keeps answering the whole time
        codes = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            code, docs = search(b, "Federal Register")
            codes.append(code)
            job = b.client.get(f"/v1/jobs/{job_id}").json()
            if job["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert job["state"] == "succeeded", job
        assert job["attempts"] == 1 and job["notes"] == [], job  # ran once, by A, never "recovered" by B
        assert codes and set(codes) == {200}

        # B reloads the changed collection on its next request: the new documents are there
        info = b.client.get("/v1/collections/shared").json()
        assert info["documents"] == 1 + len(NEW), info
        code, docs = search(b, "Federal Register")
        assert code == 200 and "federal-register-2020-17221.pdf" in docs
        code, docs = search(b, "Here's to the crazy ones")
        assert code == 200 and docs[0] == "crazyones.pdf"

        # A dies (kill -9) in the middle of its next job: B, idle, finds the orphan and finishes it
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = a.upload("shared", [("toy.pdf", pdf(TOY))])
        orphan = r.json()["job_id"]
        a.wait_job(orphan, until=("running",))
        a.kill()
        deadline = time.monotonic() + 120  # B's worker finds the orphan within RECOVER_EVERY and claims it
        while b.client.get(f"/v1/jobs/{orphan}").json()["attempts"] < 2 and time.monotonic() < deadline:
            time.sleep(0.3)
        fcntl.flock(lock, fcntl.LOCK_UN)
        job = b.wait_job(orphan)
        assert job["state"] == "succeeded" and job["attempts"] == 2, job
        assert any("interrupted" in n for n in job["notes"]), job
        code, docs = search(b, "Here's to the crazy ones")
        assert code == 200
    finally:
        if lock is not None:
            lock.close()
        for srv in (b, a):
            if srv is not None:
                srv.stop()
                srv.client.close()

    coll = Collection.open("shared", make_settings(home))
    assert coll.check() == []  # sqlite integrity_check, FTS rows, vector ids == chunk ids, graph references
    stats = coll.stats()
    assert stats["documents"] == 2 + len(NEW)
    assert stats["vectors"] == stats["chunks"] == len(coll.store.docs.chunk_ids())
    assert {d["filename"] for d in coll.documents()} == {"crazyones.pdf", "toy.pdf",
                                                          *(p.rsplit("/", 1)[-1] for p in NEW)}
