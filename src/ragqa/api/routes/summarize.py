"""Summaries as jobs: of an uploaded file (multipart, field `file`) or of a document already in a collection
(JSON {collection, doc_id}). The job's result is the summary and its levels."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ragqa.api.deps import Caller, State
from ragqa.api.errors import Unprocessable, UnsupportedMedia, readable
from ragqa.api.jobs import new_job_id
from ragqa.api.schemas import ErrorBody, JobAccepted, SummarizeDocument
from ragqa.api.uploads import receive
from ragqa.collection import MEDIA_TYPES
from ragqa.errors import InputError, NotFound

router = APIRouter(prefix="/v1", tags=["summarize"])

_FORM = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "a PDF, text or Markdown file, by name or by its part's Content-Type"},
    "chain": {"type": "string", "enum": ["map_reduce", "refine", "stuff"], "default": "map_reduce"},
    "target_words": {"type": "integer", "minimum": 10, "maximum": 2000, "default": 200}}}
BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": SummarizeDocument.model_json_schema()},
    "multipart/form-data": {"schema": _FORM, "encoding": {"file": {"contentType": ", ".join(MEDIA_TYPES)}}}}}}


def _validated(data) -> SummarizeDocument:
    try:
        return SummarizeDocument.model_validate(data)
    except ValidationError as e:
        message, fields = readable(e.errors())
        raise Unprocessable(message, fields=fields) from None


@router.post("/summarize", status_code=202, response_model=JobAccepted, openapi_extra=BODY, responses={
    400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
    413: {"model": ErrorBody}, 415: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}})
async def summarize(request: Request, state: State, caller: Caller):
    """Start a summary job: chunks are summarised, then groups of summaries, level by level, until one remains.
    Poll GET /v1/jobs/{job_id}; its result has `summary` and `levels` (pieces per level)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    state.job_capacity_check()
    job_id = new_job_id()
    if ctype == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise Unprocessable("body is not valid JSON") from None
        req = _validated(data)
        collection = caller.require(req.collection or state.settings.collection)
        state.require_collection(collection)
        docs = await state.search_lane.run(lambda: state.pool.get(collection).documents())
        matches = [d for d in docs if d["doc_id"] == req.doc_id or (len(req.doc_id) >= 8 and
                                                                      d["doc_id"].startswith(req.doc_id))]
        if not matches:
            raise NotFound(f"No document '{req.doc_id}' in collection '{collection}'.",
                           hint=f"See GET /v1/collections/{collection}/documents.")
        if len(matches) > 1:
            raise InputError(f"'{req.doc_id}' matches {len(matches)} documents; pass the whole doc_id.")
        doc = matches[0]
        if not Path(doc["source"]).is_file():
            raise NotFound(f"the file of '{doc['filename']}' is no longer at the server",
                           hint="Upload it again to summarise it.")
        params = {"path": doc["source"], "filename": doc["filename"], "doc_id": doc["doc_id"], "uploaded": False,
                  "chain": req.chain, "target_words": req.target_words}
        files: list[str] = [doc["filename"]]
        rejected: list[dict] = []
    elif ctype == "multipart/form-data":
        collection = None
        incoming = state.uploads.incoming(job_id)
        got = await receive(request, incoming, max_bytes=state.settings.server.max_upload_mb * 2**20,
                            file_fields=("file",))
        rejected = [r.to_dict() for r in got.rejected]
        try:
            if len(got.files) != 1:
                if rejected:
                    reasons = "; ".join(f"{r['filename']}: {r['reason']}" for r in rejected[:5])
                    cls = UnsupportedMedia if any(r["status"] == 415 for r in rejected) else Unprocessable
                    raise cls(f"file refused: {reasons}", rejected=rejected)
                raise Unprocessable("send exactly one file in the form field 'file'")
            extra = {k: v for k, v in got.fields.items() if k in ("chain", "target_words")}
            req = _validated({"doc_id": "upload", **extra})
        except BaseException:
            state.uploads.discard(incoming)
            raise
        folder = state.uploads.accept(job_id, ".summaries")
        saved = got.files[0]
        params = {"path": str(folder / saved.filename), "filename": saved.filename, "uploaded": True,
                  "chain": req.chain, "target_words": req.target_words}
        files = [saved.filename]
    else:
        raise UnsupportedMedia("send application/json {collection, doc_id} or multipart/form-data with a 'file'")
    state.jobs.create("summarize", collection, params, job_id=job_id)
    state.worker.wake()
    body = {"job_id": job_id, "state": "queued", "collection": collection, "files": files, "rejected": rejected,
            "url": f"/v1/jobs/{job_id}"}
    return JSONResponse(body, status_code=202, headers={"Location": body["url"]})
