"""Upload -> job -> query -> delete against a real server; bad uploads fail alone, with clear reasons."""

from __future__ import annotations

import io
import json
import time

from pypdf import PdfReader

from .conftest import CRAZY, pdf, sse_events

FOUR_PAGES = "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf"


def test_upload_job_query_delete(server):
    c = server.client
    r = server.upload("flow", [("crazyones.pdf", pdf(CRAZY)), ("pdflatex-4-pages.pdf", pdf(FOUR_PAGES))])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["files"] == ["crazyones.pdf", "pdflatex-4-pages.pdf"] and body["rejected"] == []
    assert r.headers["location"] == f"/v1/jobs/{body['job_id']}"
    job = server.wait_job(body["job_id"])
    assert job["state"] == "succeeded", job
    assert job["progress"]["files_total"] == job["progress"]["files_done"] == 2
    assert job["progress"]["pages_done"] == 5 and job["progress"]["chunks_done"] >= 2
    assert [f["status"] for f in job["result"]["files"]] == ["ok", "ok"] and job["result"]["errors"] == []

    names = {x["name"]: x for x in c.get("/v1/collections").json()["collections"]}
    assert names["flow"]["documents"] == 2 and names["flow"]["pages"] == 5
    docs = {d["filename"]: d for d in c.get("/v1/collections/flow/documents").json()["documents"]}
    assert set(docs) == {"crazyones.pdf", "pdflatex-4-pages.pdf"}
    assert "source" not in docs["crazyones.pdf"]  # no server paths

    r = c.post("/v1/query", json={"question": "Who are the crazy ones, the misfits and the rebels?",
                                  "collection": "flow", "k": 1})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert isinstance(answer["answer"], str) and answer["chain"].startswith("auto")
    assert answer["trace"]["calls"] >= 1 and answer["trace"]["completion_tokens"] >= 1
    assert answer["sources"], answer
    for s in answer["sources"]:  # every citation names a real document and a page it has
        assert s["document"] in docs and 1 <= s["page"] <= docs[s["document"]]["pages"] and s["snippet"]
        f = c.get(f"/v1/collections/flow/documents/{s['doc_id']}/file")
        assert f.status_code == 200 and f.headers["content-type"] == "application/pdf"
        assert f.content.startswith(b"%PDF-")

    four = docs["pdflatex-4-pages.pdf"]["doc_id"]
    r = c.delete(f"/v1/collections/flow/documents/{four}")
    assert r.status_code == 200 and r.json()["deleted"][0]["doc_id"] == four
    assert [d["filename"] for d in c.get("/v1/collections/flow/documents").json()["documents"]] == ["crazyones.pdf"]
    hits = c.post("/v1/search", json={"query": "pdflatex pages", "collection": "flow", "k": 5}).json()["hits"]
    assert hits and all(h["doc_id"] != four for h in hits)
    r = c.delete(f"/v1/collections/flow/documents/{four}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    assert c.get(f"/v1/collections/flow/documents/{four}/file").status_code == 404


def test_query_streams_steps_tokens_then_answer_then_sources(server):
    r = server.client.post("/v1/query", json={"question": "What do the crazy ones do?", "collection": "crazy",
                                              "k": 1, "stream": True, "chain": "stuff"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    kinds = [e for e, _ in events]
    steps = [json.loads(d)["name"] for e, d in events if e == "step"]
    assert steps == ["retrieve", "stuff"] and kinds[:2] == ["step", "step"], kinds  # progress before the first token
    assert kinds[2] == "token" and kinds[-2:] == ["answer", "sources"], kinds
    assert set(kinds[2:-2]) == {"token"}
    tokens = "".join(json.loads(d)["text"] for e, d in events if e == "token")
    answer = json.loads(events[-2][1])
    assert tokens.strip() and answer["answer"].strip() and answer["trace"]["calls"] >= 1
    sources = json.loads(events[-1][1])["sources"]
    assert [(s["document"], s["page"]) for s in sources] == [("crazyones.pdf", 1)]


def test_bad_files_fail_alone_with_reasons(server):
    bomb = _page_count_bomb()  # 10,000 pages in 828 bytes; the limit is 5,000
    r = server.upload("mixed", [
        ("notes.txt", b"Plain notes about the crazy ones and the troublemakers.\n"),
        ("fake.pdf", b"<html>this is not a pdf</html>"),
        ("../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n"),
        ("../../escape.pdf", pdf(CRAZY)),
        ("empty.pdf", b""),
        ("locked.pdf", pdf("pdfs/pypdf/encrypted-file.pdf")),
        ("bomb.pdf", bomb),
    ])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["files"] == ["notes.txt", "escape.pdf", "locked.pdf", "bomb.pdf"]
    rejected = {x["filename"]: x for x in body["rejected"]}
    assert rejected["fake.pdf"]["status"] == 415 and "not a PDF" in rejected["fake.pdf"]["reason"]
    assert rejected["passwd"]["status"] == 415 and "unsupported" in rejected["passwd"]["reason"]
    assert rejected["empty.pdf"]["status"] == 422 and "empty" in rejected["empty.pdf"]["reason"]
    job = server.wait_job(body["job_id"])
    assert job["state"] == "succeeded", job
    files = {f["filename"]: f for f in job["result"]["files"]}
    assert files["notes.txt"]["status"] == "ok" and files["escape.pdf"]["status"] == "ok"
    assert files["locked.pdf"]["status"] == "failed" and "encrypted" in files["locked.pdf"]["reason"]
    assert files["bomb.pdf"]["status"] == "failed" and "page" in files["bomb.pdf"]["reason"]
    assert {e["filename"] for e in job["result"]["errors"]} == {"locked.pdf", "bomb.pdf"}
    # nothing escaped the upload area, and the refused files were not kept
    assert not (server.home.parent / "escape.pdf").exists() and not (server.home / "escape.pdf").exists()
    kept = sorted(p.name for p in (server.home / "server" / "uploads" / "mixed").rglob("*") if p.is_file())
    assert kept == ["escape.pdf", "notes.txt"]
    names = {d["filename"] for d in server.client.get("/v1/collections/mixed/documents").json()["documents"]}
    assert names == {"notes.txt", "escape.pdf"}


def test_a_request_with_only_bad_files_is_refused(server):
    r = server.upload("refused", [("fake.pdf", b"GIF89a not a pdf")])
    assert r.status_code == 415
    err = r.json()["error"]
    assert err["type"] == "unsupported_media_type" and "fake.pdf: not a PDF" in err["message"]
    assert err["rejected"][0]["filename"] == "fake.pdf"
    r = server.client.post("/v1/collections/refused/documents", data={"note": "no files"},
                           files=[("other", ("a.txt", b"x"))])
    assert r.status_code == 422 and "unknown form field 'other'" in r.json()["error"]["message"]
    r = server.client.post("/v1/collections/refused/documents", json={"files": []})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    assert server.client.get("/v1/collections/refused").status_code == 404


def test_upload_schema_and_behaviour_agree(server):
    """What the schema allows is accepted, what it does not is refused: a part with no file name, sent as one of the
    declared media types, is a file of that type; an empty upload is refused and the schema says `minItems: 1`."""
    schema = server.client.get("/openapi.json").json()
    body = schema["paths"]["/v1/collections/{name}/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["files"]["minItems"] == 1
    declared = [t.strip() for t in body["encoding"]["files"]["contentType"].split(",")]
    assert {"application/pdf", "text/plain", "text/markdown"} <= set(declared)

    boundary = "ragqa-test-boundary"
    parts = [("application/pdf", pdf(CRAZY)), ("text/markdown", b"# Notes\n\nThe crazy ones see things differently.")]
    raw = b"".join(b"--" + boundary.encode() + b'\r\nContent-Disposition: form-data; name="files"\r\nContent-Type: '
                   + ctype.encode() + b"\r\n\r\n" + data + b"\r\n" for ctype, data in parts)
    r = server.client.post("/v1/collections/unnamed/documents", content=raw + b"--" + boundary.encode() + b"--\r\n",
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 202, r.text
    assert r.json()["files"] == ["upload.pdf", "upload.md"]
    job = server.wait_job(r.json()["job_id"])
    assert [f["status"] for f in job["result"]["files"]] == ["ok", "ok"], job

    empty = f"--{boundary}--\r\n".encode()
    r = server.client.post("/v1/collections/unnamed/documents", content=empty,
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 422 and "no files" in r.json()["error"]["message"]


def test_oversize_upload_is_413_and_nothing_is_kept(server):
    big = b"%PDF-1.4\n" + b"0" * (2 * 2**20 + 10)  # the server's limit is 2 MB
    r = server.upload("toobig", [("small.txt", b"fine"), ("big.pdf", big)])
    assert r.status_code == 413, r.text
    assert r.json()["error"]["type"] == "payload_too_large" and "2 MB" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        yield (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.pdf\"\r\n"
               b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\n")
        for _ in range(40):
            yield b"0" * 65536
        yield b"\r\n--b--\r\n"

    r = server.client.post("/v1/collections/toobig/documents", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    uploads = server.home / "server" / "uploads"
    assert not (uploads / "toobig").exists()
    assert not any((uploads / ".incoming").iterdir()) if (uploads / ".incoming").exists() else True
    assert server.client.get("/v1/collections/toobig").status_code == 404


def test_validation_errors_are_422_with_readable_messages(server):
    c = server.client
    r = c.post("/v1/query", json={"collection": "crazy", "k": 0})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert "question: Field required" in message and "k: Input should be greater than or equal to 1" in message
    r = c.post("/v1/query", json={"question": "   ", "collection": "crazy"})
    assert r.status_code == 422 and "question" in r.json()["error"]["message"]
    r = c.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["type"] == "validation_error"
    r = c.get("/v1/collections/..%2F..%2Fetc/documents")
    assert r.status_code in (404, 422) and "error" in r.json()
    r = c.post("/v1/query", json={"question": "x", "collection": "no-such"})
    assert r.status_code == 404 and "No collection 'no-such'" in r.json()["error"]["message"]
    r = c.post("/v1/query", json={"question": "x", "collection": "crazy", "chain": "magic"})
    assert r.status_code == 422 and "chain" in r.json()["error"]["message"]


def test_queries_are_answered_while_ingestion_runs(server):
    big = ["pdfs/pdfplumber/federal-register-2020-17221.pdf"]
    r = server.upload("busy", [(p.rsplit("/", 1)[1], pdf(p)) for p in big])
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    answered_while_running = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        state = server.client.get(f"/v1/jobs/{job_id}").json()["state"]
        if state in ("succeeded", "failed"):
            break
        hit = server.client.post("/v1/search", json={"query": "crazy ones", "collection": "crazy", "k": 1})
        assert hit.status_code == 200 and hit.json()["hits"][0]["document"] == "crazyones.pdf"
        if state == "running" and server.client.get(f"/v1/jobs/{job_id}").json()["state"] == "running":
            answered_while_running += 1
    assert answered_while_running >= 1
    assert server.wait_job(job_id)["state"] == "succeeded"


def test_summarize_is_a_job_with_the_summary_and_its_levels(server):
    r = server.client.post("/v1/summarize", files={"file": ("crazyones.pdf", pdf(CRAZY), "application/pdf")},
                           data={"target_words": "20"})
    assert r.status_code == 202, r.text
    job = server.wait_job(r.json()["job_id"])
    assert job["state"] == "succeeded" and job["kind"] == "summarize", job
    assert job["result"]["summary"].strip() and job["result"]["levels"][-1] == 1
    assert job["result"]["filename"] == "crazyones.pdf"
    assert not (server.home / "server" / "uploads" / ".summaries" / job["job_id"]).exists()  # not kept

    doc_id = server.client.get("/v1/collections/crazy/documents").json()["documents"][0]["doc_id"]
    r = server.client.post("/v1/summarize", json={"collection": "crazy", "doc_id": doc_id, "target_words": 20})
    assert r.status_code == 202, r.text
    by_doc = server.wait_job(r.json()["job_id"])
    assert by_doc["state"] == "succeeded" and by_doc["result"]["doc_id"] == doc_id
    r = server.client.post("/v1/summarize", json={"collection": "crazy", "doc_id": "f" * 64})
    assert r.status_code == 404
    r = server.client.post("/v1/summarize", json={"collection": "crazy", "doc_id": doc_id, "target_words": 1})
    assert r.status_code == 422 and "target_words" in r.json()["error"]["message"]


def _page_count_bomb(levels: int = 4, fan: int = 10) -> bytes:
    """A PDF of under 1 KB with fan**levels pages: a page tree whose nodes list the same kid `fan` times."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(levels):
        parent = f"/Parent {level + 1} 0 R " if level else ""
        kids = " ".join([f"{level + 3} 0 R"] * fan)
        objects.append(f"<< /Type /Pages {parent}/Kids [{kids}] /Count {fan ** (levels - level)} >>")
    objects.append(f"<< /Type /Page /Parent {levels + 1} 0 R /MediaBox [0 0 612 792] >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    assert len(PdfReader(io.BytesIO(bytes(out))).pages) == fan ** levels
    return bytes(out)


def test_a_reupload_of_the_same_file_name_replaces_the_older_upload(server):
    c = server.client
    first = server.wait_job(server.upload("versions", [("notes.txt", b"The launch is planned for March.")])
                            .json()["job_id"])
    old = first["result"]["files"][0]["doc_id"]
    second = server.wait_job(server.upload("versions", [("notes.txt", b"The launch moved to September.")])
                             .json()["job_id"])
    row = second["result"]["files"][0]
    assert second["state"] == "succeeded" and row["status"] == "ok" and row["replaced"] == [old]
    docs = c.get("/v1/collections/versions/documents").json()["documents"]
    assert [(d["filename"], d["doc_id"]) for d in docs] == [("notes.txt", row["doc_id"])]
    kept = [p.read_text() for p in (server.home / "server" / "uploads" / "versions").rglob("*") if p.is_file()]
    assert kept == ["The launch moved to September."]  # the older upload's file went with its document
    hits = c.post("/v1/search", json={"query": "launch month", "collection": "versions", "k": 5}).json()["hits"]
    assert hits and {h["doc_id"] for h in hits} == {row["doc_id"]}


def test_a_failed_first_upload_leaves_no_collection_behind(server):
    c = server.client
    job = server.wait_job(server.upload("lockedout", [("locked.pdf", pdf("pdfs/pypdf/encrypted-file.pdf"))])
                          .json()["job_id"])
    assert job["state"] == "failed" and "encrypted" in job["error"]
    assert c.get("/v1/collections/lockedout").status_code == 404
    assert "lockedout" not in {x["name"] for x in c.get("/v1/collections").json()["collections"]}
    assert "lockedout" not in {m["id"] for m in c.get("/v1/models").json()["data"]}
    assert not (server.home / "indexes" / "lockedout").exists()


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_flate_bomb_upload_fails_alone_and_the_server_keeps_its_memory(server, tmp_path):
    from fixtures.hostile import flate_bomb_pdf

    bomb = flate_bomb_pdf(tmp_path / "bomb.pdf", 512)  # 1.5 MB that inflates to 512 MB of text operators
    before = _rss_mb(server.proc.pid)
    job = server.wait_job(server.upload("bombed", [("bomb.pdf", bomb.read_bytes()), ("crazyones.pdf", pdf(CRAZY))])
                          .json()["job_id"])
    files = {f["filename"]: f for f in job["result"]["files"]}
    assert job["state"] == "succeeded" and files["crazyones.pdf"]["status"] == "ok"
    assert files["bomb.pdf"]["status"] == "failed" and "MB of memory" in files["bomb.pdf"]["reason"]
    assert _rss_mb(server.proc.pid) - before < 200


def test_a_document_file_opens_by_prefix_or_file_name(server):
    server.ingest("byname", ["pdfs/pypdf/crazyones.pdf"])
    [doc] = server.client.get("/v1/collections/byname/documents").json()["documents"]
    for ref in (doc["doc_id"], doc["doc_id"][:10], "crazyones.pdf"):
        r = server.client.get(f"/v1/collections/byname/documents/{ref}/file")
        assert r.status_code == 200 and r.content.startswith(b"%PDF-"), ref
    assert server.client.get("/v1/collections/byname/documents/nothing.pdf/file").status_code == 404


def test_upload_metadata_and_filters_on_search_query_and_chat(server):
    c = server.client
    for name, meta in (("crazyones.pdf", {"team": "a"}), ("pdflatex-4-pages.pdf", {"team": "b", "year": 2023})):
        r = c.post("/v1/collections/filtered/documents", data={"meta": json.dumps(meta)},
                   files=[("files", (name, pdf(CRAZY if name == "crazyones.pdf" else FOUR_PAGES),
                                     "application/pdf"))])
        assert r.status_code == 202, r.text
        assert server.wait_job(r.json()["job_id"])["state"] == "succeeded"
    docs = {d["filename"]: d for d in c.get("/v1/collections/filtered/documents").json()["documents"]}
    assert docs["pdflatex-4-pages.pdf"]["meta"] == {"team": "b", "year": "2023"}

    query = "the crazy ones, the misfits, the rebels"
    hits = c.post("/v1/search", json={"query": query, "collection": "filtered", "k": 5}).json()["hits"]
    assert hits[0]["document"] == "crazyones.pdf"
    for flt in ({"meta": {"team": "b"}}, {"files": ["pdflatex-*"]}, {"documents": [docs["pdflatex-4-pages.pdf"]["doc_id"]]},
                {"pages": "2-4", "meta": {"year": "2023"}}):
        r = c.post("/v1/search", json={"query": query, "collection": "filtered", "k": 5, "filter": flt})
        assert r.status_code == 200, r.text
        assert r.json()["hits"] and {h["document"] for h in r.json()["hits"]} == {"pdflatex-4-pages.pdf"}, flt
    r = c.post("/v1/query", json={"question": query, "collection": "filtered", "k": 1, "filter": {"meta": {"team": "b"}}})
    assert r.status_code == 200, r.text
    assert {s["document"] for s in r.json()["sources"]} == {"pdflatex-4-pages.pdf"}
    assert r.json()["retrieval"]["filter"] == {"meta": {"team": "b"}}
    r = c.post("/v1/chat/completions", json={"model": "filtered", "k": 1, "filter": {"files": ["pdflatex-*"]},
                                             "messages": [{"role": "user", "content": query}]})
    assert r.status_code == 200 and {s["document"] for s in r.json()["sources"]} == {"pdflatex-4-pages.pdf"}

    r = c.post("/v1/search", json={"query": query, "collection": "filtered", "filter": {"pages": "0-3"}})
    assert r.status_code == 422 and "pages" in r.json()["error"]["message"]
    r = c.post("/v1/search", json={"query": query, "collection": "filtered", "filter": {"pages": "4-2"}})
    assert r.status_code == 200 and r.json()["hits"] == []  # a range that runs backwards matches nothing
    r = c.post("/v1/search", json={"query": query, "collection": "filtered", "filter": {"colour": "red"}})
    assert r.status_code == 422
    r = c.post("/v1/query", json={"question": query, "collection": "filtered", "filter": {"meta": {"team": "z"}}})
    assert r.status_code == 404 and "within the filter" in r.json()["error"]["message"]
    r = c.post("/v1/collections/filtered/documents", data={"meta": "[1, 2]"},
               files=[("files", ("again.pdf", pdf(CRAZY), "application/pdf"))])
    assert r.status_code == 422 and "meta" in r.json()["error"]["message"]
