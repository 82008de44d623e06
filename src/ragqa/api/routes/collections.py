"""Collections and their documents: upload (-> an ingestion job), list, delete, and open a document's file."""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, JSONResponse

from ragqa.api.deps import Caller, State
from ragqa.api.errors import Unprocessable, UnsupportedMedia
from ragqa.api.jobs import new_job_id
from ragqa.api.schemas import (
    NAME_PATTERN,
    CollectionInfo,
    CollectionList,
    Deleted,
    DocumentList,
    ErrorBody,
    JobAccepted,
)
from ragqa.api.uploads import receive
from ragqa.collection import MEDIA_TYPES, list_collections
from ragqa.errors import NotFound

router = APIRouter(prefix="/v1", tags=["collections"])

Name = Annotated[str, Path(pattern=NAME_PATTERN, description="collection name", examples=["default"])]
DocId = Annotated[str, Path(min_length=1, max_length=128, description="doc_id (sha256 of the file), a unique "
                                                                       "8+ character prefix, or the file name")]
ERRORS = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
          422: {"model": ErrorBody}, 503: {"model": ErrorBody}}

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"},
        "description": "PDF, text or Markdown files, by name (.pdf, .txt, .md, ...) or by each part's Content-Type; "
                       "each is checked by its first bytes"}, "meta": {
        "type": "object", "propertyNames": {"pattern": "^[A-Za-z0-9_.-]{1,64}$"}, "additionalProperties": {"type": "string"},
        "description": 'optional: a JSON object stored with every document of this upload, e.g. {"year": "2023"}; '
                       'search and query filters match it'}}},
    "encoding": {"files": {"contentType": ", ".join(MEDIA_TYPES)}, "meta": {"contentType": "application/json"}}}}}}


def _info(coll) -> dict:
    s = coll.stats()
    return {"name": coll.name, "documents": s["documents"], "chunks": s["chunks"], "pages": s["pages"],
            "embedder": s.get("embedder")}


@router.get("/collections", response_model=CollectionList, responses=ERRORS)
async def collections(state: State, caller: Caller):
    """Every collection this key may use, with its counts."""
    def work():
        return [_info(state.pool.get(n)) for n in list_collections(state.settings) if caller.allows(n)]

    return {"collections": await state.search_lane.run(work)}


@router.get("/collections/{name}", response_model=CollectionInfo, responses=ERRORS)
async def collection(name: Name, state: State, caller: Caller):
    state.require_collection(caller.require(name))
    return await state.search_lane.run(lambda: _info(state.pool.get(name)))


@router.post("/collections/{name}/documents", status_code=202, response_model=JobAccepted, openapi_extra=UPLOAD_BODY,
             responses={**ERRORS, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}})
async def upload(name: Name, request: Request, state: State, caller: Caller):
    """Upload one or many files (form field `files`). Answers 202 with a job id at once; the files are ingested
    by the background worker (GET /v1/jobs/{job_id} for progress). Files refused at upload (not a PDF, empty,
    unsupported type) are listed in `rejected`; the others go on. An upload of a file name already in the
    collection replaces that document when the job finishes."""
    caller.require(name)
    state.job_capacity_check()
    job_id = new_job_id()
    incoming = state.uploads.incoming(job_id)
    got = await receive(request, incoming, max_bytes=state.settings.server.max_upload_mb * 2**20,
                        file_fields=("files",))
    rejected = [r.to_dict() for r in got.rejected]
    if not got.files:
        state.uploads.discard(incoming)
        if not rejected:
            raise Unprocessable("no files: send one or more files in the form field 'files'")
        reasons = "; ".join(f"{r['filename']}: {r['reason']}" for r in rejected[:5])
        cls = UnsupportedMedia if any(r["status"] == 415 for r in rejected) else Unprocessable
        raise cls(f"no file accepted: {reasons}", rejected=rejected)
    try:
        meta = upload_meta(got.fields.get("meta"))
    except BaseException:
        state.uploads.discard(incoming)
        raise
    folder = state.uploads.accept(job_id, name)
    files = [{"filename": f.filename, "path": str(folder / f.filename), "bytes": f.size, "kind": f.kind}
             for f in got.files]
    state.jobs.create("ingest", name, {"files": files, **({"meta": meta} if meta else {})}, job_id=job_id)
    state.worker.wake()
    body = {"job_id": job_id, "state": "queued", "collection": name, "files": [f["filename"] for f in files],
            "rejected": rejected, "url": f"/v1/jobs/{job_id}"}
    return JSONResponse(body, status_code=202, headers={"Location": body["url"]})


def upload_meta(field: str | None) -> dict[str, str]:
    """The form field `meta`: a JSON object of plain keys and scalar values, stored with every uploaded document
    (filters match it); 422 for anything else."""
    from ragqa.errors import InputError
    from ragqa.filters import parse_meta

    if not field or not field.strip():
        return {}
    try:
        data = json.loads(field)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(v, str | int | float | bool) for v in data.values()):
        raise Unprocessable('form field \'meta\' must be a JSON object of plain values, e.g. {"year": "2023"}')
    try:
        return dict(parse_meta({k: str(v) for k, v in data.items()}))
    except InputError as e:
        raise Unprocessable(f"form field 'meta': {e}") from None


@router.get("/collections/{name}/documents", response_model=DocumentList, responses=ERRORS)
async def documents(name: Name, state: State, caller: Caller):
    state.require_collection(caller.require(name))
    docs = await state.search_lane.run(lambda: state.pool.get(name).documents())
    return {"collection": name, "documents": [{k: v for k, v in d.items() if k != "source"} for d in docs]}


@router.delete("/collections/{name}/documents/{doc_id}", response_model=Deleted, responses=ERRORS)
async def delete(name: Name, doc_id: DocId, state: State, caller: Caller):
    """Remove a document from the docstore, the vector index and the knowledge graph (and its uploaded file)."""
    state.require_collection(caller.require(name))

    def work():
        docs = state.pool.get(name).delete(doc_id)
        for d in docs:
            state.uploads.remove(d["source"])
        return docs

    docs = await state.write_lane.run(work)
    return {"collection": name, "deleted": [{"doc_id": d["doc_id"], "filename": d["filename"],
                                            "chunks": d["chunks"]} for d in docs]}


@router.get("/collections/{name}/documents/{doc_id}/file", responses={
    **ERRORS, 200: {"content": {"application/pdf": {}, "text/plain": {}}, "description": "the document's file"}})
async def document_file(name: Name, doc_id: DocId, state: State, caller: Caller):
    """The document's original file, so a citation can open the cited page (`...#page=N` for a PDF)."""
    state.require_collection(caller.require(name))
    try:
        doc = (await state.search_lane.run(lambda: state.pool.get(name).find(doc_id)))[0]
    except NotFound:
        raise NotFound(f"No document '{doc_id}' in collection '{name}'.",
                       hint=f"See GET /v1/collections/{name}/documents.") from None
    path = FilePath(doc["source"])
    if not path.is_file():
        raise NotFound(f"the file of '{doc['filename']}' is no longer at the server",
                       hint="Upload it again to open its pages.")
    media = "application/pdf" if doc["kind"] == "pdf" else "text/plain; charset=utf-8"
    return FileResponse(path, media_type=media, filename=doc["filename"], content_disposition_type="inline")
