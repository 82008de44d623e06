"""`ragqa doctor` as an operator runs it, against a real OpenAI-compatible server on 127.0.0.1 (llama-cpp-python's
server on the embedded GGUF, standing in for vLLM, which needs a GPU) and against the embedded backend."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import CACHE
from ragqa.llm.registry import gguf_path

KEY = "doctor-key"
N_CTX = 2048


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    """llama_cpp.server with an API key, as vLLM runs with VLLM_API_KEY."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("doctor_llm") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2-135m")), "--model_alias",
             "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "1",
             "--api_key", KEY], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url + "/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"llama_cpp.server did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def doctor(home, **env) -> tuple[int, dict]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    full.update(RAGQA_HOME=str(home), RAGQA_CACHE_DIR=str(CACHE), RAGQA_CONFIG=str(home / "absent.toml"),
                RAGQA_LLM__THREADS="1", HF_HUB_OFFLINE="1", **env)
    result = subprocess.run([sys.executable, "-m", "ragqa", "doctor", "--json"], env=full, capture_output=True,
                            text=True, timeout=300)
    assert result.stdout.strip(), result.stderr[-2000:]
    return result.returncode, json.loads(result.stdout)


def failed(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"] if not c["ok"]}


def test_healthy_openai_backend_reports_model_window_budget_and_embedder(llm_server, tmp_path):
    code, report = doctor(tmp_path, RAGQA_LLM__BACKEND="openai", RAGQA_LLM__BASE_URL=llm_server,
                          RAGQA_LLM__API_KEY=KEY, RAGQA_LLM__MODEL="smollm2", RAGQA_LLM__N_CTX=str(N_CTX),
                          RAGQA_LLM__MAX_TOKENS="256")
    assert code == 0 and report["healthy"], failed(report)
    assert report["backend"] == "openai" and report["model"] == "smollm2"
    assert report["context_window"] == N_CTX and report["context_source"] == "RAGQA_LLM__N_CTX"
    assert report["prompt_budget"] == N_CTX - 256 - 16
    assert report["embedder"] == "minilm" and report["vectors"] == "faiss"
    checks = {c["name"]: c for c in report["checks"]}
    assert {"llm server", "model", "generation", "token budget", "embedder", "vector index", "storage"} <= set(checks)
    assert "serving smollm2" in checks["llm server"]["detail"]


def test_unhealthy_backends_exit_1_with_the_setting_to_fix(llm_server, tmp_path):
    base = {"RAGQA_LLM__BACKEND": "openai", "RAGQA_LLM__BASE_URL": llm_server, "RAGQA_LLM__MODEL": "smollm2"}
    code, report = doctor(tmp_path, **base, RAGQA_LLM__API_KEY="wrong", RAGQA_LLM__N_CTX=str(N_CTX))
    assert code == 1 and "RAGQA_LLM__API_KEY" in failed(report)["llm server"]["hint"]

    code, report = doctor(tmp_path, **{**base, "RAGQA_LLM__MODEL": "no-such-model"}, RAGQA_LLM__API_KEY=KEY,
                          RAGQA_LLM__N_CTX=str(N_CTX))
    assert code == 1 and "smollm2" in failed(report)["model"]["hint"]

    # llama.cpp's server does not report max_model_len (vLLM does): without N_CTX there is no budget
    code, report = doctor(tmp_path, **base, RAGQA_LLM__API_KEY=KEY)
    assert code == 1 and "RAGQA_LLM__N_CTX" in failed(report)["context window"]["hint"]
    assert report["context_window"] is None

    code, report = doctor(tmp_path, **{**base, "RAGQA_LLM__BASE_URL": f"http://127.0.0.1:{free_port()}/v1"},
                          RAGQA_LLM__API_KEY=KEY)
    assert code == 1 and "RAGQA_LLM__BASE_URL" in failed(report)["llm server"]["hint"]


def test_embedded_backend_reads_the_window_from_the_loaded_model(tmp_path):
    code, report = doctor(tmp_path, RAGQA_LLM__BACKEND="llamacpp", RAGQA_LLM__MODEL="smollm2-135m",
                          RAGQA_LLM__N_CTX="1024")
    assert code == 0, failed(report)
    assert report["model"] == "smollm2-135m" and report["context_window"] == 1024


class VLLMModels:
    """vLLM reports each model's max_model_len in /v1/models; llama.cpp's server does not. This forwards to the real
    server and adds that one field, standing in for vLLM (which needs a GPU) only in what it reports."""

    def __init__(self, upstream: str, max_model_len: int):
        parent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                r = httpx.request(method, parent.upstream + self.path.removeprefix("/v1"), content=body, timeout=120,
                                  headers={k: v for k, v in self.headers.items() if k.lower() in ("authorization",
                                                                                                 "content-type")})
                content = r.content
                if self.path == "/v1/models" and r.status_code == 200:
                    data = r.json()
                    for model in data["data"]:
                        model["max_model_len"] = max_model_len
                    content = json.dumps(data).encode()
                self.send_response(r.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.upstream = upstream
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_window_comes_from_max_model_len_and_a_larger_n_ctx_is_refused(llm_server, tmp_path):
    proxy = VLLMModels(llm_server, max_model_len=N_CTX)
    try:
        base = {"RAGQA_LLM__BACKEND": "openai", "RAGQA_LLM__BASE_URL": proxy.url, "RAGQA_LLM__API_KEY": KEY,
                "RAGQA_LLM__MODEL": "smollm2"}
        code, report = doctor(tmp_path, **base)
        assert code == 0, failed(report)
        assert report["context_window"] == N_CTX and report["context_source"] == "max_model_len from /v1/models"
        assert report["prompt_budget"] == N_CTX - 384 - 16

        code, report = doctor(tmp_path, **base, RAGQA_LLM__N_CTX=str(2 * N_CTX))
        assert code == 1 and "exceeds the server's max_model_len" in failed(report)["context window"]["detail"]
    finally:
        proxy.server.shutdown()
