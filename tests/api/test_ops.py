"""Health, readiness, Prometheus metrics, the OpenAPI docs and the web page."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

SAMPLE = r'[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? [0-9.e+-]+'  # name{label="value",...} number


def test_health_and_readiness(server):
    assert server.client.get("/healthz").json()["status"] == "ok"
    ready = server.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"job_store": "ok", "job_worker": "ok",
                                                                   "storage": "ok"}


def test_metrics_are_prometheus_text(server):
    server.client.get("/v1/jobs/does-not-exist")
    reply = server.client.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain; version=")
    for line in reply.text.splitlines():  # every sample line is `name{labels} value`
        assert line.startswith("#") or re.fullmatch(SAMPLE, line), line
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}  # Prometheus's own parser
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    # one series per route template, not per id
    assert samples[("ragqa_http_requests_total",
                    (("method", "GET"), ("route", "/v1/jobs/{job_id}"), ("status", "404")))] >= 1
    assert samples[("ragqa_http_request_duration_seconds_bucket",
                    (("le", "+Inf"), ("method", "GET"), ("route", "/v1/jobs/{job_id}")))] >= 1
    assert samples[("ragqa_jobs", (("kind", "ingest"), ("state", "succeeded")))] >= 1
    assert families["ragqa_http_request_duration_seconds"].type == "histogram"
    for name in ("ragqa_llm_prompt_tokens", "ragqa_llm_completion_tokens", "ragqa_rejected"):
        assert families[name].type == "counter"
    assert families["ragqa_lane_pending"].type == "gauge"
    assert not any(name.endswith("_created") for name, _ in samples)


def test_openapi_docs_and_the_web_page(server):
    schema = server.client.get("/openapi.json").json()
    for path in ("/v1/collections/{name}/documents", "/v1/jobs/{job_id}", "/v1/query", "/v1/summarize",
                 "/v1/chat/completions", "/healthz", "/readyz", "/metrics"):
        assert path in schema["paths"], path
    upload = schema["paths"]["/v1/collections/{name}/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert server.client.get("/docs").status_code == 200
    page = server.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ("/v1/query", "stream: true", "/documents", "#page=", "/v1/jobs/"):
        assert needle in page.text


def test_server_said_at_start_that_it_has_no_auth(server):
    assert "no API key configured" in server.log() and "127.0.0.1 only" in server.log()
