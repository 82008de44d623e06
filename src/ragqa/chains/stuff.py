"""stuff: every retrieved chunk that fits goes into one prompt. The budget comes from the model's real
window; the lowest-ranked chunks are dropped first.

`structured=True` (auto's reading of a question that asks for one fact) asks for JSON {"found", "answer"}:
the model's verdict comes with the answer, a restatement of the question before it is dropped (as map_rerank
does: "锣鼓经是X" -> "X"), the answer is checked against the chunks (`grounded`: every word of it stands in one
chunk), and only the chunks that hold it are cited. A stream shows the answer's text, not the
JSON around it."""

from __future__ import annotations

from collections.abc import Callable

from ragqa.chains.base import Answer, Budget, Trace, call, cite, quote_sources, source_block
from ragqa.chains.json_stream import FieldStreamer
from ragqa.chains.map_rerank import NOT_FOUND, claims_found, drop_echo, locate, support
from ragqa.chains.prompts import Prompts
from ragqa.errors import BudgetError
from ragqa.llm.base import LLM, Message, json_object
from ragqa.types import Hit

SCHEMA = {"type": "object", "properties": {"found": {"type": "boolean"}, "answer": {"type": "string"}},
          "required": ["found", "answer"]}  # the verdict first, as in map_rerank


def messages(question: str, hits: list[Hit], prompts: Prompts, *, structured: bool = False) -> list[Message]:
    context = "\n\n".join(source_block(i, h) for i, h in enumerate(hits, 1))
    system = prompts.system + prompts.cite + prompts.stuff_context.format(context=context)
    user = (prompts.stuff_json if structured else prompts.stuff).format(context=context, question=question)
    return prompts.instructed([{"role": "system", "content": system}, {"role": "user", "content": user}])


def read_structured(text: str) -> tuple[str, bool]:
    """(answer, found) from a structured reply; a reply that is not JSON is read as a plain answer."""
    data = json_object(text)
    if data is None or "answer" not in data:
        answer = text.strip()
        return answer, claims_found(text, answer)
    answer = str(data.get("answer") or "").strip()
    return answer, data.get("found") is not False and claims_found(text, answer)


def holding(answer: str, hits: list[Hit]) -> list[Hit]:
    """The chunks in which every word of the answer stands (CJK: every character)."""
    return [h for h in hits if answer and support(answer, h.text) == 1.0]


def select(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
           structured: bool = False) -> list[Hit]:
    """The longest rank-ordered prefix of hits whose prompt fits (binary search on exact counts)."""
    lo, hi = 0, len(hits)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if llm.count_messages(messages(question, hits[:mid], prompts, structured=structured)) <= budget.prompt_limit:
            lo = mid
        else:
            hi = mid - 1
    return hits[:lo]


def fits(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
         structured: bool = False) -> bool:
    return llm.count_messages(messages(question, hits, prompts, structured=structured)) <= budget.prompt_limit


def stuff(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
          on_token: Callable[[str], None] | None = None, structured: bool = False) -> Answer:
    trace = Trace()
    kept = select(question, hits, llm, budget, prompts, structured=structured)
    if hits and not kept:
        raise BudgetError(f"not even the best chunk fits a {budget.context_window}-token window "
                          f"with {budget.max_tokens} tokens reserved for the answer",
                          hint="Lower RAGQA_CHUNK_TOKENS, raise the window, or use --chain map_reduce.")
    if not structured:
        with trace.step("stuff") as step:
            step.detail = {"chunks_in": len(hits), "chunks_used": len(kept), "dropped": len(hits) - len(kept)}
            completion = call(llm, messages(question, kept, prompts), budget, step, on_token=on_token)
        return Answer(quote_sources(completion.text.strip(), kept), cite(kept), "stuff", trace)
    streamer = FieldStreamer("answer", on_token, unless=r'"found"\s*:\s*false') if on_token else None
    with trace.step("stuff") as step:
        completion = call(llm, messages(question, kept, prompts, structured=True), budget, step,
                          on_token=streamer.feed if streamer else None, json_schema=SCHEMA)
        answer, found = read_structured(completion.text)
        answer = quote_sources(drop_echo(answer, question), kept) if found else answer
        held = holding(answer, kept) if found else []
        step.detail = {"chunks_in": len(hits), "chunks_used": len(kept), "dropped": len(hits) - len(kept),
                       "json": True, "found": found, "answer": answer, "held_by": [h.chunk_id for h in held]}
    grounded = bool(held)
    sources = cite([locate(h, answer) for h in held]) if grounded else cite(kept)
    return Answer(answer if found else NOT_FOUND, sources, "stuff", trace, abstained=not found,
                  detail={"found": found, "grounded": grounded, "draft": answer})
