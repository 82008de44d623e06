"""create_app(settings): the FastAPI app. Settings come in from the entry point; nothing is read at import."""

from __future__ import annotations

import ipaddress
import logging
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ragqa import __version__
from ragqa.api import errors
from ragqa.api.jobs import Worker
from ragqa.api.metrics import Metrics, MetricsMiddleware
from ragqa.api.routes import collections, jobs, ops, query, summarize
from ragqa.api.routes import openai as openai_routes
from ragqa.api.state import AppState
from ragqa.api.tasks import inputs_present, run_ingest, run_summarize
from ragqa.errors import ConfigError
from ragqa.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """Upload PDFs, follow ingestion jobs, ask questions and get answers that cite document and page.

* Auth: `Authorization: Bearer KEY` with a key from `RAGQA_SERVER__API_KEYS` (none when no key is configured;
  then the server binds to loopback only).
* Errors: `{"error": {"type", "message"}}` with 400/401/403/404/413/415/422/502/503 (503 has `Retry-After`).
* `POST /v1/chat/completions` is OpenAI-compatible: `model` names a collection.
"""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, settings: Settings) -> None:
    """Refuse to serve without auth anywhere but loopback."""
    if not settings.server.api_keys and not is_loopback(host):
        raise ConfigError(f"refusing to bind to {host} without an API key: anyone who can reach it could read "
                          "and change every collection",
                          hint="Set RAGQA_SERVER__API_KEYS='{\"KEY\": [\"*\"]}' (or per collection), "
                               "or bind to 127.0.0.1.")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = AppState(settings, metrics)
        state.recovered = state.jobs.recover(inputs_present)
        runners = {"ingest": partial(run_ingest, settings=settings, uploads=state.uploads),
                   "summarize": partial(run_summarize, settings=settings, uploads=state.uploads)}

        def on_done(job: dict, result: dict) -> None:
            if job["kind"] == "summarize" and "trace" in result:
                state.metrics.observe_llm("summarize", result["trace"])

        state.worker = Worker(state.jobs, runners, on_done, recover=partial(state.jobs.recover, inputs_present))
        state.worker.start()
        app.state.ragqa = state
        log.info("ragqa %s serving %s (%d jobs waiting)", __version__, settings.home, state.jobs.waiting())
        try:
            yield
        finally:
            # graceful shutdown: the running job stops at its next progress step and is queued again
            state.worker.stop(timeout=60)
            state.close()

    app = FastAPI(title="ragqa", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    metrics = Metrics()  # one per app: the middleware counts requests, the state adds jobs and tokens
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    errors.install(app)
    for module in (collections, jobs, query, summarize, openai_routes, ops):
        app.include_router(module.router)
    if not settings.server.api_keys:
        app.openapi = partial(_openapi_without_auth, app)
    return app


def _openapi_without_auth(app: FastAPI) -> dict:
    """The schema of a server without API keys: no route asks for a bearer token, because none checks one
    (schema-driven clients would otherwise send one, or refuse to call)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict):
                    operation.pop("security", None)
        schema.get("components", {}).pop("securitySchemes", None)
        app.openapi_schema = schema
    return app.openapi_schema

