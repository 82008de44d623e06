"""Operations: liveness, readiness, Prometheus metrics, and the web page."""

from __future__ import annotations

import os
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from ragqa import __version__
from ragqa.api.deps import State
from ragqa.api.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz():
    """The process answers."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", responses={503: {"description": "not ready, with the failing checks"}})
async def readyz(state: State):
    """Ready to take work: the job store answers, the job worker runs, and the data folders are writable."""
    checks = {}
    try:
        state.jobs.ping()
        checks["job_store"] = "ok"
    except Exception as e:  # reported, not raised: this route exists to say what is wrong
        checks["job_store"] = f"error: {type(e).__name__}"
    checks["job_worker"] = "ok" if state.worker is not None and state.worker.alive else "not running"
    home = state.settings.home
    checks["storage"] = "ok" if os.access(home, os.W_OK) else f"{home} is not writable"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks,
            "jobs_waiting": state.jobs.waiting() if checks["job_store"] == "ok" else None}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State):
    """Prometheus text format: request counts and latencies, jobs by state, LLM calls and tokens."""
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page():
    return HTMLResponse(resources.files("ragqa.api").joinpath("static/index.html").read_text(encoding="utf-8"))


@router.get("/favicon.ico", include_in_schema=False)
async def favicon():
    """The page's icon (SVG, which browsers take under this name too), so a browser's request is not a 404."""
    svg = resources.files("ragqa.api").joinpath("static/favicon.svg").read_bytes()
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})
