"""Prometheus text exposition written by hand (format 0.0.4): request counts and latencies per route, jobs by
kind and state, LLM calls and tokens, queue depth and rejections. No client library needed."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _labels(**kw) -> str:
    def esc(v) -> str:
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in kw.items()) + "}"


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}  # bucket counts..., sum, count
        self.llm: dict[tuple[str, str], int] = defaultdict(int)  # (what, kind) -> calls/prompt/completion tokens
        self.rejected: dict[str, int] = defaultdict(int)
        self.gauges: list[Callable[[], list[tuple[str, str, dict, float]]]] = []
        self.started = time.time()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            row = self.latency.setdefault((method, route), [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    row[i] += 1
            row[-2] += seconds
            row[-1] += 1

    def observe_llm(self, kind: str, trace: dict) -> None:
        """`trace` is an answer's or a summary's trace totals: calls, prompt_tokens, completion_tokens."""
        with self._lock:
            self.llm[("calls", kind)] += int(trace.get("calls", 0))
            self.llm[("prompt", kind)] += int(trace.get("prompt_tokens", 0))
            self.llm[("completion", kind)] += int(trace.get("completion_tokens", 0))

    def reject(self, lane: str) -> None:
        with self._lock:
            self.rejected[lane] += 1

    def render(self) -> str:
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            head("ragqa_http_requests_total", "counter", "HTTP requests by method, route template and status.")
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(f"ragqa_http_requests_total{_labels(method=method, route=route, status=status)} {n}")
            head("ragqa_http_request_duration_seconds", "histogram", "HTTP request latency, to the response's end.")
            for (method, route), row in sorted(self.latency.items()):
                for bound, n in zip(BUCKETS, row, strict=False):
                    out.append("ragqa_http_request_duration_seconds_bucket"
                               f"{_labels(method=method, route=route, le=bound)} {int(n)}")
                out.append(f"ragqa_http_request_duration_seconds_bucket{_labels(method=method, route=route, le='+Inf')}"
                           f" {int(row[-1])}")
                out.append(f"ragqa_http_request_duration_seconds_sum{_labels(method=method, route=route)} {row[-2]:.6f}")
                out.append(f"ragqa_http_request_duration_seconds_count{_labels(method=method, route=route)} {int(row[-1])}")
            for what, name, text in (("calls", "ragqa_llm_calls_total", "LLM calls."),
                                     ("prompt", "ragqa_llm_prompt_tokens_total", "LLM prompt tokens."),
                                     ("completion", "ragqa_llm_completion_tokens_total", "LLM completion tokens.")):
                head(name, "counter", text + " By kind of work (query, chat, summarize).")
                for (w, kind), n in sorted(self.llm.items()):
                    if w == what:
                        out.append(f"{name}{_labels(kind=kind)} {n}")
            head("ragqa_rejected_total", "counter", "Requests refused with 503 because the queue was full.")
            for lane, n in sorted(self.rejected.items()):
                out.append(f"ragqa_rejected_total{_labels(lane=lane)} {n}")
        gauges: dict[str, tuple[str, list[str]]] = {}
        for source in self.gauges:
            for name, text, labels, value in source():
                gauges.setdefault(name, (text, []))[1].append(f"{name}{_labels(**labels) if labels else ''} {value}")
        for name, (text, lines) in gauges.items():
            head(name, "gauge", text)
            out.extend(lines)
        head("ragqa_start_time_seconds", "gauge", "When the server started (Unix time).")
        out.append(f"ragqa_start_time_seconds {self.started:.0f}")
        return "\n".join(out) + "\n"


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
