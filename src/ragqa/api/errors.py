"""One error handler: every error class maps to a status and a body `{"error": {"type", "message"}}`.

Handlers never put `str(e)` of an unknown exception in a response: those are logged with their traceback and
answered with a generic 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragqa.errors import (
    BackendError,
    BudgetError,
    ConfigError,
    EmbedderMismatch,
    InputError,
    LoadError,
    NotFound,
    RagqaError,
)

log = logging.getLogger(__name__)


class ApiError(RagqaError):
    """Errors only the HTTP layer raises; each carries its status."""

    status = 400
    type = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, hint: str | None = None, **extra):
        super().__init__(message, hint)
        self.extra = extra  # more fields for the error body, e.g. the rejected files of an upload


class Unauthorized(ApiError):
    status, type = 401, "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status, type = 403, "forbidden"


class PayloadTooLarge(ApiError):
    status, type = 413, "payload_too_large"


class UnsupportedMedia(ApiError):
    status, type = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, type = 422, "validation_error"


class Overloaded(ApiError):
    """Work beyond capacity: the client should come back after `retry_after` seconds."""

    status, type = 503, "overloaded"

    def __init__(self, message: str, retry_after: int = 2, hint: str | None = None):
        super().__init__(message, hint)
        self.headers = {"Retry-After": str(max(1, int(retry_after)))}


# Core errors -> (status, type). Order matters: subclasses before their parents.
_CORE: list[tuple[type[RagqaError], int, str]] = [
    (NotFound, 404, "not_found"),
    (EmbedderMismatch, 409, "embedder_mismatch"),
    (ConfigError, 400, "config_error"),
    (InputError, 400, "invalid_input"),
    (BudgetError, 400, "budget_error"),
    (BackendError, 502, "backend_error"),
]
_LOAD_STATUS = {"too_large": 413, "unsupported": 415, "malformed": 415}


def status_of(e: RagqaError) -> tuple[int, str]:
    if isinstance(e, ApiError):
        return e.status, e.type
    if isinstance(e, LoadError):
        return _LOAD_STATUS.get(e.reason, 422), f"load_error.{e.reason}"
    for cls, status, kind in _CORE:
        if isinstance(e, cls):
            return status, kind
    return 500, "error"


def problem(status: int, kind: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status, headers=headers)


def error_body(e: BaseException) -> tuple[int, dict]:
    """Status and body for an exception raised outside a request handler (SSE streams, jobs)."""
    if isinstance(e, RagqaError):
        status, kind = status_of(e)
        return status, {"error": {"type": kind, "message": str(e)}}
    return 500, {"error": {"type": "internal", "message": "internal error; see the server log"}}


def readable(errors: list[dict]) -> tuple[str, list[dict]]:
    """Pydantic's error list -> one sentence plus the fields, e.g. "body.k: Input should be >= 1"."""
    fields = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "body"
        fields.append({"field": loc, "message": err.get("msg", "invalid")})
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    if len(fields) > 5:
        message += f"; and {len(fields) - 5} more"
    return message or "invalid request", fields


def install(app: FastAPI) -> None:
    @app.exception_handler(RagqaError)
    async def _ragqa(request: Request, e: RagqaError):
        status, kind = status_of(e)
        if status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.url.path, status, e)
        return problem(status, kind, str(e), getattr(e, "headers", None), **getattr(e, "extra", {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError):
        message, fields = readable(list(e.errors()))
        return problem(422, "validation_error", message, fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        kinds = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "payload_too_large"}
        message = e.detail if isinstance(e.detail, str) else "error"
        if e.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs"
        return problem(e.status_code, kinds.get(e.status_code, "http_error"), message, getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "internal error; see the server log")
