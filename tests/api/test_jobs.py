"""Jobs survive restarts: finished ones are still there, a running one is resumed (or failed with its reason)."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from conftest import NKE
from ragqa.api.jobs import JobStore

from .conftest import CRAZY, Server, pdf

FEDERAL = "pdfs/pdfplumber/federal-register-2020-17221.pdf"  # 15 pages: long enough to interrupt
FOUR_PAGES = "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf"
NIKE = str(NKE)  # 104 pages: still running after a restart, so the crash lands mid-job


def test_restart_keeps_collections_and_finished_jobs_and_fails_hopeless_ones(tmp_path):
    srv = Server(tmp_path / "home").start()
    try:
        job = srv.ingest("kept", [CRAZY])
        docs = srv.client.get("/v1/collections/kept/documents").json()["documents"]
        assert srv.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after its graceful shutdown
        assert "Application shutdown complete" in srv.log()

        # while it is down: two jobs left `running` by "crashes": one interrupted 3 times, one whose files are gone
        store = JobStore(srv.home / "server" / "jobs.sqlite")
        spare = tmp_path / "spare.pdf"
        shutil.copy(srv.home / "server" / "uploads" / "kept" / job["job_id"] / "crazyones.pdf", spare)
        hopeless = store.create("ingest", "kept", {"files": [{"filename": "spare.pdf", "path": str(spare)}]})
        gone = store.create("ingest", "kept", {"files": [{"filename": "gone.pdf", "path": str(tmp_path / "gone.pdf")}]})
        for _ in range(3):
            assert store.claim_next()["id"] == hopeless["id"]
            store.requeue(hopeless["id"], "simulated crash")
        store.db.execute("UPDATE jobs SET state='running', attempts=3 WHERE id=?", (hopeless["id"],))
        assert store.claim_next()["id"] == gone["id"]
        store.close()

        srv.start()
        assert "kept" in [c["name"] for c in srv.client.get("/v1/collections").json()["collections"]]
        assert srv.client.get("/v1/collections/kept/documents").json()["documents"] == docs
        again = srv.client.get(f"/v1/jobs/{job['job_id']}").json()
        assert again["state"] == "succeeded" and again["result"] == job["result"]
        failed = srv.client.get(f"/v1/jobs/{hopeless['id']}").json()
        assert failed["state"] == "failed" and "interrupted by a server restart 3 times" in failed["error"]
        failed = srv.client.get(f"/v1/jobs/{gone['id']}").json()
        assert failed["state"] == "failed" and "uploaded files are gone" in failed["error"]
        assert any("interrupted by a server restart" in n for n in failed["notes"])
    finally:
        srv.kill()


def _wait_progress(srv: Server, job_id: str, files_done: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = srv.client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] != "queued" and job["state"] != "running":
            pytest.fail(f"the job ended before it could be interrupted: {job}")
        if job["state"] == "running" and job["progress"].get("files_done", 0) >= files_done:
            return job
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not reach {files_done} files in {timeout}s")


def test_a_running_job_is_checkpointed_at_shutdown_and_resumed_after_a_crash(tmp_path):
    srv = Server(tmp_path / "home").start()
    try:
        r = srv.upload("resume", [(Path(p).name, pdf(p)) for p in (CRAZY, FEDERAL, FOUR_PAGES, NIKE)])
        job_id = r.json()["job_id"]

        _wait_progress(srv, job_id, 1)
        srv.stop(signal.SIGTERM)  # graceful: stopped at its next progress step, queued again
        assert "Application shutdown complete" in srv.log()
        store = JobStore(srv.home / "server" / "jobs.sqlite")
        job = store.get(job_id)
        store.close()
        assert job["state"] == "queued" and job["notes"] == ["stopped by a server shutdown; resumed at the next start"]

        srv.start()
        _wait_progress(srv, job_id, 3)
        srv.kill()  # a crash: the row still says `running`

        srv.start()
        job = srv.wait_job(job_id)
        assert job["state"] == "succeeded", job
        assert any("interrupted by a server restart during attempt" in n and "resumed" in n for n in job["notes"])
        assert job["attempts"] == 2  # the graceful stop does not count; the crash does
        files = {f["filename"]: f for f in job["result"]["files"]}
        assert all(f["status"] == "ok" for f in files.values()), files
        assert files["crazyones.pdf"]["reason"] == "ingested before a server restart"
        docs = srv.client.get("/v1/collections/resume/documents").json()["documents"]
        assert sorted(d["filename"] for d in docs) == sorted(files)  # each document once
    finally:
        srv.kill()
