"""Jobs: the state and progress of ingestion and summary jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from ragqa.api.deps import Caller, State
from ragqa.api.jobs import public
from ragqa.api.schemas import ErrorBody, Job, JobList
from ragqa.errors import NotFound

router = APIRouter(prefix="/v1", tags=["jobs"])
ERRORS = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


@router.get("/jobs/{job_id}", response_model=Job, responses=ERRORS)
async def job(job_id: Annotated[str, Path(min_length=1, max_length=64)], state: State, caller: Caller):
    """`state` (queued, running, succeeded, failed), progress, and the result: per-file status and errors for
    an ingestion, the summary and its levels for a summary. `notes` say what restarts did to it."""
    found = state.jobs.get(job_id)
    if found is None or (found["collection"] is not None and not caller.allows(found["collection"])):
        raise NotFound(f"No job '{job_id}'.", hint="Jobs are listed at GET /v1/jobs.")
    return public(found)


@router.get("/jobs", response_model=JobList, responses=ERRORS)
async def jobs(state: State, caller: Caller,
               collection: Annotated[str | None, Query(max_length=64)] = None,
               job_state: Annotated[Literal["queued", "running", "succeeded", "failed"] | None,
                                    Query(alias="state")] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50):
    """The most recent jobs first."""
    allowed = caller.collections
    if collection is not None:
        caller.require(collection)
        allowed = {collection}
    return {"jobs": [public(j) for j in state.jobs.list(collections=allowed, state=job_state, limit=limit)]}
