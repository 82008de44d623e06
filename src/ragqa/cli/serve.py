"""`ragqa serve`: the HTTP service under uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ragqa.cli import render
from ragqa.cli.app import app, settings

log = logging.getLogger(__name__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (RAGQA_SERVER__HOST); non-loopback needs API keys.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (RAGQA_SERVER__PORT).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API, the OpenAI-compatible endpoint and the web page at http://HOST:PORT/."""
    import uvicorn

    from ragqa.api.app import check_bind, create_app

    s = settings()
    host = host or s.server.host
    port = port if port is not None else s.server.port
    s.server.host, s.server.port = host, port
    check_bind(host, s)  # ConfigError -> one line and exit 1
    render.serve_banner(host, port, s)
    uvicorn.run(create_app(s), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=15,
                proxy_headers=False, server_header=False)
