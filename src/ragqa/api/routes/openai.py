"""OpenAI-compatible chat completions, where `model` names a collection: existing OpenAI clients and chat UIs
use ragqa as a model. The answer keeps its citations twice: as a "Sources:" list at the end of the text (what a
chat UI shows) and as a `sources` field (what a program reads), streamed or not."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ragqa.api.deps import Caller, State
from ragqa.api.errors import Unprocessable, error_body
from ragqa.api.routes.query import ERRORS, SSE_HEADERS, AnswerStream, answer
from ragqa.api.schemas import ChatRequest, ErrorBody
from ragqa.chains.conversation import turns
from ragqa.collection import list_collections

router = APIRouter(prefix="/v1", tags=["openai"])


def sources_text(sources: list[dict]) -> str:
    if not sources:
        return ""
    lines = [f"[{i}] {s['document']}, p. {s['page']}" for i, s in enumerate(sources, 1)]
    return "\n\nSources:\n" + "\n".join(lines)


def _usage(trace: dict) -> dict:
    p, c = int(trace.get("prompt_tokens", 0)), int(trace.get("completion_tokens", 0))
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


@router.get("/models", responses={401: {"model": ErrorBody}})
async def models(state: State, caller: Caller):
    """The collections this key may use, as OpenAI models."""
    names = [n for n in list_collections(state.settings) if caller.allows(n)]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "ragqa"}
                                       for n in names]}


@router.post("/chat/completions", responses={
    **ERRORS, 200: {"description": "an OpenAI chat.completion; with `stream: true`, chat.completion.chunk events "
                                   "ending with `data: [DONE]`", "content": {"text/event-stream": {}}}})
async def chat_completions(body: ChatRequest, state: State, caller: Caller):
    """Answer the last user message from the collection named by `model`, with citations; the turns before it
    are its history (a follow-up is rewritten to stand alone: `ragqa.conversation` says what was searched) and a
    system message is an instruction for the answer."""
    collection = caller.require(body.model)
    question = body.question()
    if not question:
        raise Unprocessable("messages: no user message with text to answer")
    args = {"chain": body.chain, "k": body.k, "retrieval": body.retrieval, "kind": "chat",
            "max_tokens": body.max_completion_tokens or body.max_tokens,
            "within": body.filter.build() if body.filter else None, "history": turns(body.history()),
            "instruction": body.instruction()}
    cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
    if body.stream:
        options = getattr(body, "stream_options", None)
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        stream = AnswerStream(state, collection, question, **args)
        return StreamingResponse(_chunks(stream, cid, created, collection, include_usage), media_type="text/event-stream",
                                 headers=SSE_HEADERS)
    result = await answer(state, collection, question, **args)
    return {"id": cid, "object": "chat.completion", "created": created, "model": collection,
            "choices": [{"index": 0, "finish_reason": result.get("finish_reason", "stop"), "logprobs": None, "message": {
                "role": "assistant", "content": result["answer"] + sources_text(result["sources"])}}],
            "usage": _usage(result["trace"]), "sources": result["sources"],
            "ragqa": _extra(result)}


def _extra(result: dict) -> dict:
    """ragqa's fields beside OpenAI's: the chain that ran, and what was searched for a follow-up."""
    return {"chain": result["chain"], "abstained": result["abstained"], "trace": result["trace"],
            **({"conversation": result["conversation"]} if "conversation" in result else {})}


async def _chunks(stream: AnswerStream, cid: str, created: int, model: str, include_usage: bool) -> AsyncIterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    async for text in stream.tokens():
        yield chunk({"content": text})
    if stream.error is not None:
        # OpenAI streams report a failure mid-stream as an `error` object
        yield f"data: {json.dumps(error_body(stream.error)[1])}\n\n"
        yield "data: [DONE]\n\n"
        return
    result = stream.answer
    yield chunk({"content": sources_text(result["sources"])}, sources=result["sources"])
    yield chunk({}, result.get("finish_reason", "stop"),
                ragqa=_extra(result))
    if include_usage:
        data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                "usage": _usage(result["trace"])}
        yield f"data: {json.dumps(data)}\n\n"
    yield "data: [DONE]\n\n"
