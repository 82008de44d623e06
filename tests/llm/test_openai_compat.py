"""The `openai` backend against a real OpenAI-compatible server on 127.0.0.1: llama-cpp-python's server on
the embedded GGUF (it stands in for vLLM, which needs a GPU), behind a small counting proxy that can inject
server errors and measures how many requests are in flight at once."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from ragqa.chains import run_chain
from ragqa.errors import BackendError
from ragqa.llm.openai_compat import OpenAICompatLLM
from ragqa.llm.registry import gguf_path

N_CTX = 4096


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2-135m")), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "1", "--seed", "0"]
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        log.close()
        tail = log_path.read_text(errors="replace")[-3000:]
        pytest.fail(f"llama_cpp.server did not start (exit code {proc.poll()}); its output ends with:\n{tail}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


class Proxy:
    """Forwards to the upstream server; can answer the next N chat requests with HTTP 500."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.fail_next = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.chat_requests = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self, method):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with proxy.lock:
                    if self.path.endswith("/chat/completions"):
                        proxy.chat_requests += 1
                        if proxy.fail_next > 0:
                            proxy.fail_next -= 1
                            self.send_response(500)
                            self.end_headers()
                            self.wfile.write(b'{"error": "injected"}')
                            return
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    time.sleep(0.2)  # hold the request a moment, as a busy GPU server would
                    r = httpx.request(method, proxy.upstream + self.path, content=body, timeout=300,
                                      headers={"content-type": "application/json"})
                    self.send_response(r.status_code)
                    self.send_header("content-type", r.headers.get("content-type", "application/json"))
                    self.send_header("content-length", str(len(r.content)))
                    self.end_headers()
                    self.wfile.write(r.content)
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def proxy(llama_server):
    p = Proxy(llama_server)
    yield p
    p.close()


def test_completion_counts_and_window(llama_server):
    llm = OpenAICompatLLM(llama_server + "/v1", context_window=N_CTX)
    c = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert c.text and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 16
    assert llm.count_tokens("hello world, this is a test") > 3  # the server's tokenizer (/extras/tokenize)
    assert llm._tokenizer_route and llm._tokenizer_route != "none"
    assert "".join(llm.stream([{"role": "user", "content": "Count to three."}], max_tokens=12))


def test_map_steps_are_sent_concurrently(proxy):
    llm = OpenAICompatLLM(proxy.url + "/v1", context_window=N_CTX, concurrency=4)
    batch = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(6)]
    out = llm.complete_many(batch, max_tokens=8)
    assert len(out) == 6 and all(c.completion_tokens > 0 for c in out)
    assert proxy.max_in_flight >= 2


def test_retry_after_a_server_error(proxy):
    llm = OpenAICompatLLM(proxy.url + "/v1", context_window=N_CTX, retries=3)
    proxy.fail_next = 2
    c = llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert c.text and proxy.chat_requests == 3


def test_gives_up_with_a_clear_error(proxy):
    llm = OpenAICompatLLM(proxy.url + "/v1", context_window=N_CTX, retries=1)
    proxy.fail_next = 5
    with pytest.raises(BackendError, match="HTTP 500"):
        llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=8)


def test_unreachable_server_names_the_setting():
    llm = OpenAICompatLLM(f"http://127.0.0.1:{free_port()}/v1", context_window=N_CTX, retries=1, timeout=2)
    with pytest.raises(BackendError, match="RAGQA_LLM__BASE_URL"):
        llm.complete([{"role": "user", "content": "hi"}], max_tokens=4)


def test_map_reduce_through_the_server(nke_collection, proxy):
    llm = OpenAICompatLLM(proxy.url + "/v1", context_window=N_CTX, concurrency=4)
    hits = nke_collection.search("Where are NIKE's world headquarters?", k=4)
    answer = run_chain("map_reduce", "Where are NIKE's world headquarters?", hits, llm)
    assert answer.sources and answer.trace.steps[0].calls == 4
    assert proxy.max_in_flight >= 2
    assert all(step.max_prompt_tokens <= N_CTX for step in answer.trace.steps)


def test_map_rerank_structured_output_through_the_server(nke_collection, proxy):
    # llama.cpp's server refuses OpenAI's json_schema format; the backend detects its dialect once, before a
    # concurrent batch, instead of each request failing and racing to fall back.
    from ragqa.chains import Budget

    llm = OpenAICompatLLM(proxy.url + "/v1", context_window=N_CTX, concurrency=3)
    hits = nke_collection.search("Where are NIKE's world headquarters?", k=3)
    answer = run_chain("map_rerank", "Where are NIKE's world headquarters?", hits, llm,
                       budget=Budget(N_CTX, max_tokens=48))
    assert llm._json_style == "json_object"
    assert answer.trace.steps[0].calls == 3 and answer.sources
