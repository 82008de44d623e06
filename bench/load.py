"""A bounded load test of `ragqa serve` on 127.0.0.1: concurrent clients asking (retrieval-only and full
answers) while other clients upload PDFs; zero 5xx expected, every upload present, every job finished.

One run: a real server (`python -m ragqa serve`, embedded SmolLM2, 16 tokens per answer, queue sized for the
clients) in a temporary RAGQA_HOME; a first upload builds the collection; then `--clients` threads each send
`--queries` requests, alternating POST /v1/search (retrieval only) and POST /v1/query (chain stuff, k=2), while
`--uploads` threads each upload one more PDF. Latency p50/p95 per kind, status counts, jobs and documents are
checked at the end; results in bench/results/load.json.

    RAGQA_DATA=../shared/data .venv/bin/python bench/load.py [--clients 50] [--queries 20] [--uploads 4]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
FIRST = ["pdfs/pypdf/crazyones.pdf", "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf"]
MORE = ["pdfs/pdfplumber/ca-warn-report.pdf", "pdfs/pdfplumber/2023-06-20-PV.pdf", "pdfs/pdfminer/jo.pdf",
        "pdfs/pdfplumber/pr-136-example.pdf", "pdfs/pypdf/GeoBase_NHNC1_Data_Model_UML_EN.pdf"]
QUESTIONS = ["Who are the crazy ones?", "What is this document about?", "What does the report list?",
             "Which people are mentioned?", "What is on page 2?"]


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 3)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.5)
    raise TimeoutError(job_id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--uploads", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "load.json"))
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="ragqa-load-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    env.update(RAGQA_HOME=str(home), RAGQA_LLM__MODEL="smollm2-135m", RAGQA_LLM__MAX_TOKENS="16",
               RAGQA_SERVER__QUEUE_SIZE=str(args.clients * 2), RAGQA_SERVER__JOB_QUEUE_SIZE="64",
               RAGQA_CONFIG=str(home / "none.toml"), HF_HUB_OFFLINE="1")
    if "RAGQA_CACHE_DIR" in os.environ:
        env["RAGQA_CACHE_DIR"] = os.environ["RAGQA_CACHE_DIR"]
    log = open(home / "server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "ragqa", "serve", "--port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start; see {home / 'server.log'}")
            time.sleep(0.3)
        client = httpx.Client(base_url=base, timeout=600)
        files = [("files", (Path(p).name, (DATA / p).read_bytes(), "application/pdf")) for p in FIRST]
        first = wait_job(client, client.post("/v1/collections/load/documents", files=files).json()["job_id"])
        assert first["state"] == "succeeded", first
        client.post("/v1/query", json={"question": "warm up", "collection": "load", "k": 1, "chain": "stuff"})

        latencies: dict[str, list[float]] = {"search": [], "query": []}
        statuses: Counter = Counter()
        jobs: list[str] = []
        lock = threading.Lock()

        def asker(i: int) -> None:
            with httpx.Client(base_url=base, timeout=900) as c:
                for j in range(args.queries):
                    q = QUESTIONS[(i + j) % len(QUESTIONS)]
                    kind = "search" if j % 2 == 0 else "query"
                    body = {"query": q, "collection": "load", "k": 3} if kind == "search" else \
                        {"question": q, "collection": "load", "k": 2, "chain": "stuff"}
                    t0 = time.perf_counter()
                    r = c.post(f"/v1/{kind}", json=body)
                    dt = time.perf_counter() - t0
                    with lock:
                        statuses[r.status_code] += 1
                        if r.status_code == 200:
                            latencies[kind].append(dt)

        def uploader(i: int) -> None:
            rel = MORE[i % len(MORE)]
            with httpx.Client(base_url=base, timeout=600) as c:
                r = c.post("/v1/collections/load/documents",
                           files=[("files", (f"u{i}-{Path(rel).name}", (DATA / rel).read_bytes(), "application/pdf"))])
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 202:
                        jobs.append(r.json()["job_id"])

        threads = [threading.Thread(target=asker, args=(i,)) for i in range(args.clients)]
        threads += [threading.Thread(target=uploader, args=(i,)) for i in range(args.uploads)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        finished = [wait_job(client, j) for j in jobs]
        docs = {d["filename"] for d in client.get("/v1/collections/load/documents").json()["documents"]}
        expected = {f"u{i}-{Path(MORE[i % len(MORE)]).name}" for i in range(args.uploads)}
        result = {
            "args": vars(args), "wall_s": round(wall, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "server_errors_5xx": sum(v for k, v in statuses.items() if k >= 500),
            "jobs": {"submitted": len(jobs), "succeeded": sum(j["state"] == "succeeded" for j in finished)},
            "uploaded_documents_present": sorted(expected & docs), "uploaded_documents_missing": sorted(expected - docs),
            "latency_s": {kind: {"n": len(xs), "p50": percentile(xs, 0.5), "p95": percentile(xs, 0.95),
                                 "mean": round(statistics.mean(xs), 3) if xs else None}
                          for kind, xs in latencies.items()},
            "machine": machine_info(("fastapi", "uvicorn", "llama_cpp_python")),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_s", "statuses", "server_errors_5xx", "jobs",
                                             "uploaded_documents_missing", "latency_s")}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
