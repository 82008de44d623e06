"""Prometheus metrics through `prometheus_client`, one registry per app (tests start many apps in a process):
request counts and latencies per route template, jobs by kind and state, LLM calls and tokens, lane depth and
rejections."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # no *_created series: the start time is one gauge, not one per label set

GaugeRow = tuple[str, str, dict, float]  # name, help, labels, value


class _Gauges(Collector):
    """Values read when scraped (jobs by state, lane depth) rather than kept up to date by every change."""

    def __init__(self):
        self.sources: list[Callable[[], list[GaugeRow]]] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for source in self.sources:
            for name, text, labels, value in source():
                family = families.get(name)
                if family is None:
                    family = families[name] = GaugeMetricFamily(name, text, labels=list(labels))
                family.add_metric([str(v) for v in labels.values()], value)
        yield from families.values()


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self._requests = Counter("ragqa_http_requests", "HTTP requests by method, route template and status.",
                                 ("method", "route", "status"), registry=r)
        self._latency = Histogram("ragqa_http_request_duration_seconds", "HTTP request latency, to the response's end.",
                                  ("method", "route"), buckets=BUCKETS, registry=r)
        by_kind = " By kind of work (query, chat, summarize)."
        self._llm = {"calls": Counter("ragqa_llm_calls", "LLM calls." + by_kind, ("kind",), registry=r),
                     "prompt_tokens": Counter("ragqa_llm_prompt_tokens", "LLM prompt tokens." + by_kind, ("kind",),
                                              registry=r),
                     "completion_tokens": Counter("ragqa_llm_completion_tokens", "LLM completion tokens." + by_kind,
                                                  ("kind",), registry=r)}
        self._rejected = Counter("ragqa_rejected", "Requests refused with 503 because the queue was full.", ("lane",),
                                 registry=r)
        Gauge("ragqa_start_time_seconds", "When the server started (Unix time).", registry=r).set(time.time())
        self._gauges = _Gauges()
        r.register(self._gauges)

    @property
    def gauges(self) -> list[Callable[[], list[GaugeRow]]]:
        return self._gauges.sources

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._latency.labels(method, route).observe(seconds)

    def observe_llm(self, kind: str, trace: dict) -> None:
        """`trace` is an answer's or a summary's trace totals: calls, prompt_tokens, completion_tokens."""
        for what, counter in self._llm.items():
            counter.labels(kind).inc(int(trace.get(what, 0)))

    def reject(self, lane: str) -> None:
        self._rejected.labels(lane).inc()

    def render(self) -> str:
        return generate_latest(self.registry).decode()


class MetricsMiddleware:
    """Pure ASGI (a BaseHTTPMiddleware would buffer streamed answers): counts every HTTP request by its route
    template, so /v1/jobs/{job_id} is one series, not one per id."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("unmatched" if status == 404 else "other")
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)
