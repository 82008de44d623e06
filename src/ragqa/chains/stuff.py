"""stuff: every retrieved chunk that fits goes into one prompt. The budget comes from the model's real
window; the lowest-ranked chunks are dropped first."""

from __future__ import annotations

from collections.abc import Callable

from ragqa.chains.base import Answer, Budget, Trace, call, cite, quote_sources, source_block
from ragqa.chains.prompts import Prompts
from ragqa.errors import BudgetError
from ragqa.llm.base import LLM, Message
from ragqa.types import Hit


def messages(question: str, hits: list[Hit], prompts: Prompts) -> list[Message]:
    context = "\n\n".join(source_block(i, h) for i, h in enumerate(hits, 1))
    system = prompts.system + prompts.cite + prompts.stuff_context.format(context=context)
    return [{"role": "system", "content": system},
            {"role": "user", "content": prompts.stuff.format(context=context, question=question)}]


def select(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts) -> list[Hit]:
    """The longest rank-ordered prefix of hits whose prompt fits (binary search on exact counts)."""
    lo, hi = 0, len(hits)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if llm.count_messages(messages(question, hits[:mid], prompts)) <= budget.prompt_limit:
            lo = mid
        else:
            hi = mid - 1
    return hits[:lo]


def fits(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts) -> bool:
    return llm.count_messages(messages(question, hits, prompts)) <= budget.prompt_limit


def stuff(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
          on_token: Callable[[str], None] | None = None) -> Answer:
    trace = Trace()
    kept = select(question, hits, llm, budget, prompts)
    if hits and not kept:
        raise BudgetError(f"not even the best chunk fits a {budget.context_window}-token window "
                          f"with {budget.max_tokens} tokens reserved for the answer",
                          hint="Lower RAGQA_CHUNK_TOKENS, raise the window, or use --chain map_reduce.")
    with trace.step("stuff") as step:
        step.detail = {"chunks_in": len(hits), "chunks_used": len(kept), "dropped": len(hits) - len(kept)}
        completion = call(llm, messages(question, kept, prompts), budget, step, on_token=on_token)
    return Answer(quote_sources(completion.text.strip(), kept), cite(kept), "stuff", trace)
