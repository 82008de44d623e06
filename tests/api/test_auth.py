"""Bearer keys from settings, per collection; the bounded queue; no auth means loopback only."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from .conftest import CRAZY, Server, free_port, server_env

KEYS = {"admin-key": ["*"], "alice-key": ["alice"]}


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """Keys required; one answer at a time and no waiting line, so a second concurrent question gets 503."""
    srv = Server(tmp_path_factory.mktemp("strict"), RAGQA_SERVER__API_KEYS=json.dumps(KEYS),
                 RAGQA_SERVER__WORKERS="1", RAGQA_SERVER__QUEUE_SIZE="0").start()
    try:
        srv.ingest("alice", [CRAZY], key="alice-key")
        srv.ingest("bob", [CRAZY], key="admin-key")
        yield srv
    finally:
        srv.stop()


def test_requests_need_a_key_and_keys_are_limited_to_their_collections(strict):
    c = strict.client
    r = c.get("/v1/collections")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == {"type": "unauthorized",
                                 "message": "missing API key: send the header 'Authorization: Bearer KEY'"}
    r = c.get("/v1/collections", headers=strict.headers("wrong"))
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid API key"

    alice, admin = strict.headers("alice-key"), strict.headers("admin-key")
    assert [x["name"] for x in c.get("/v1/collections", headers=alice).json()["collections"]] == ["alice"]
    assert [x["name"] for x in c.get("/v1/collections", headers=admin).json()["collections"]] == ["alice", "bob"]
    for method, path in (("GET", "/v1/collections/bob/documents"), ("GET", "/v1/collections/bob"),
                         ("DELETE", "/v1/collections/bob/documents/x")):
        r = c.request(method, path, headers=alice)
        assert r.status_code == 403 and r.json()["error"]["type"] == "forbidden", (path, r.text)
    r = strict.upload("bob", [("a.txt", b"text")], key="alice-key")
    assert r.status_code == 403 and "may not use collection 'bob'" in r.json()["error"]["message"]
    r = c.post("/v1/search", json={"query": "crazy", "collection": "bob"}, headers=alice)
    assert r.status_code == 403
    assert c.post("/v1/search", json={"query": "crazy", "collection": "alice"}, headers=alice).status_code == 200

    bob_job = c.get("/v1/jobs", headers=admin).json()["jobs"][0]
    assert bob_job["collection"] == "bob"
    assert c.get(f"/v1/jobs/{bob_job['job_id']}", headers=alice).status_code == 404
    assert {j["collection"] for j in c.get("/v1/jobs", headers=alice).json()["jobs"]} == {"alice"}

    for open_path in ("/healthz", "/readyz", "/metrics", "/", "/openapi.json"):
        assert c.get(open_path).status_code == 200, open_path
    with openai.OpenAI(base_url=strict.url + "/v1", api_key="wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError):
            sdk.models.list()
    with openai.OpenAI(base_url=strict.url + "/v1", api_key="alice-key", max_retries=0) as sdk:
        assert [m.id for m in sdk.models.list()] == ["alice"]
        with pytest.raises(openai.PermissionDeniedError):
            sdk.chat.completions.create(model="bob", messages=[{"role": "user", "content": "hi"}])
    assert "API key(s) configured" in strict.log()


def test_work_beyond_capacity_gets_503_with_retry_after(strict):
    def ask(_):
        return strict.client.post("/v1/query", headers=strict.headers("alice-key"),
                                  json={"question": "Who are the crazy ones?", "collection": "alice", "k": 1})

    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(ask, range(3)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    assert set(statuses) <= {200, 503}
    busy = next(r for r in responses if r.status_code == 503)
    assert int(busy.headers["retry-after"]) >= 1 and busy.json()["error"]["type"] == "overloaded"
    assert 'ragqa_rejected_total{lane="answer"}' in strict.client.get("/metrics").text


def test_retry_after_is_the_measured_service_time_of_the_work_ahead(tmp_path):
    """One answer thread, no waiting line: while a question is being answered, the next gets 503 with a
    Retry-After of at least what an answer took here (the server's service time includes the trace's seconds)."""
    srv = Server(tmp_path / "home", RAGQA_SERVER__WORKERS="1", RAGQA_SERVER__QUEUE_SIZE="0").start()
    try:
        srv.ingest("crazy", [CRAZY])

        def ask(question: str):
            return srv.client.post("/v1/query", json={"question": question, "collection": "crazy", "k": 1,
                                                      "chain": "stuff"})

        first = ask("Who are the crazy ones?")  # a distinct question each time: no reply-cache hit
        assert first.status_code == 200, first.text
        served = first.json()["trace"]["seconds"]
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(ask, "What do the crazy ones change?")
            for _ in range(600):  # until the lane reports it running (bounded: 60 s)
                if 'ragqa_lane_pending{lane="answer"} 1' in srv.client.get("/metrics").text:
                    break
                time.sleep(0.1)
            busy = ask("Why are the crazy ones pushing the human race forward?")
            assert running.result().status_code == 200
        assert busy.status_code == 503, busy.text
        retry = int(busy.headers["retry-after"])
        assert retry >= math.ceil(served) and f"retry in {retry} s" in busy.json()["error"]["message"]
    finally:
        srv.stop()


def test_without_keys_the_server_refuses_a_non_loopback_host(tmp_path):
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "ragqa", "serve", "--host", "0.0.0.0", "--port", str(port)],
                            env=server_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "refusing to bind to 0.0.0.0 without an API key" in message and "RAGQA_SERVER__API_KEYS" in message
