"""Questions: POST /v1/query (an answer with sources and a trace, or Server-Sent Events) and POST /v1/search
(retrieval only)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ragqa.api.deps import Caller, State
from ragqa.api.errors import error_body
from ragqa.api.schemas import ErrorBody, QueryRequest, QueryResponse, SearchRequest, SearchResponse
from ragqa.api.state import AppState
from ragqa.chains.conversation import turns
from ragqa.errors import RagqaError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["query"])
ERRORS = {400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody},
          404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 502: {"model": ErrorBody}, 503: {"model": ErrorBody}}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(Exception):
    """Raised in the answering thread when the client of a stream went away: stops generating."""


def sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def answer(state: AppState, collection: str, question: str, *, chain=None, k=None, retrieval=None,
                 kind: str = "query", max_tokens: int | None = None, within=None, history=None,
                 instruction: str | None = None) -> dict:
    """Answer in the answer lane (503 when full); the Answer as a dict: answer, chain, sources, trace, ..."""
    state.require_collection(collection)

    def work():
        return state.pool.get(collection).ask(question, chain=chain, k=k, retrieval=retrieval,
                                              max_tokens=max_tokens, within=within, history=history,
                                              instruction=instruction).to_dict()

    result = await state.answer_lane.run(work)
    state.metrics.observe_llm(kind, result["trace"])
    return result


class AnswerStream:
    """Tokens from the answering thread to the event loop, then the finished answer (or its error)."""

    def __init__(self, state: AppState, collection: str, question: str, *, chain=None, k=None, retrieval=None,
                 kind: str = "query", max_tokens: int | None = None, within=None, history=None,
                 instruction: str | None = None):
        state.require_collection(collection)
        self.state, self.kind = state, kind
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.gone = threading.Event()
        self.answer: dict | None = None
        self.error: BaseException | None = None

        def tell(kind: str, value: str) -> None:
            if self.gone.is_set():
                raise ClientGone()
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

        def work():
            return state.pool.get(collection).ask(question, chain=chain, k=k, retrieval=retrieval,
                                                  on_token=lambda text: tell("token", text),
                                                  on_step=lambda name: tell("step", name),
                                                  max_tokens=max_tokens, within=within, history=history,
                                                  instruction=instruction).to_dict()

        # submitted now, so a full lane is a plain 503 before any byte of the stream is sent
        self.future = state.answer_lane.submit(work)
        self.future.add_done_callback(lambda _: self.loop.call_soon_threadsafe(self.queue.put_nowait, None))

    async def tokens(self) -> AsyncIterator[str]:
        async for kind, value in self.events():
            if kind == "token":
                yield value

    async def events(self) -> AsyncIterator[tuple[str, str]]:
        """("step", name) as each step begins and ("token", text) as the answer is written; then `answer` or
        `error` is set."""
        try:
            while (event := await self.queue.get()) is not None:
                yield event
            try:
                self.answer = self.future.result()
                self.state.metrics.observe_llm(self.kind, self.answer["trace"])
            except BaseException as e:  # reported to the client as an event; the stream has started
                self.error = e
                if not isinstance(e, RagqaError | ClientGone):
                    log.error("unexpected error while streaming an answer", exc_info=e)
        finally:
            self.gone.set()


def stream_events(stream: AnswerStream, render: Callable[[AnswerStream], AsyncIterator[str]]) -> StreamingResponse:
    return StreamingResponse(render(stream), media_type="text/event-stream", headers=SSE_HEADERS)


async def _query_events(stream: AnswerStream) -> AsyncIterator[str]:
    async for kind, value in stream.events():
        yield sse("token", {"text": value}) if kind == "token" else sse("step", {"name": value})
    if stream.error is not None:
        yield sse("error", error_body(stream.error)[1])
        return
    result = dict(stream.answer)
    sources = result.pop("sources")
    yield sse("answer", result)
    yield sse("sources", {"sources": sources})


@router.post("/query", response_model=QueryResponse, responses={
    **ERRORS, 200: {"description": "the answer; with `stream: true`, Server-Sent Events: `step` ({name}) as each "
                                   "step begins (retrieve, then the chain's), `token` ({text}) as the answer is "
                                   "written, then `answer` (answer, chain, trace), then `sources` (the citations)",
                    "content": {"text/event-stream": {}}}})
async def query(body: QueryRequest, state: State, caller: Caller):
    """Answer a question from a collection, citing document and page for every source."""
    collection = caller.require(body.collection or state.settings.collection)
    args = {"chain": body.chain, "k": body.k, "retrieval": body.retrieval,
            "within": body.filter.build() if body.filter else None,
            "history": turns(t.model_dump() for t in body.history), "instruction": body.instruction}
    if body.stream:
        return stream_events(AnswerStream(state, collection, body.question, **args), _query_events)
    return await answer(state, collection, body.question, **args)


@router.post("/search", response_model=SearchResponse, responses=ERRORS)
async def search(body: SearchRequest, state: State, caller: Caller):
    """Retrieval only: the chunks that best match, with document, page and score (no LLM)."""
    collection = state.require_collection(caller.require(body.collection or state.settings.collection))
    within = body.filter.build() if body.filter else None

    def work():
        hits = state.pool.get(collection).search(body.query, k=body.k, mode=body.retrieval, within=within)
        return [{"doc_id": h.doc_id, "document": h.filename, "page": h.page_start, "page_end": h.page_end,
                 "chunk_id": h.chunk_id, "score": h.score, "text": h.text} for h in hits]

    return {"collection": collection, "hits": await state.search_lane.run(work)}
