"""map_reduce: one batched map over the chunks, then a recursive collapse (groups in parallel) until the
pieces fit `token_max`, then one combine. Provenance travels as lists of citations, never joined strings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ragqa.chains.base import (
    Answer,
    Budget,
    Trace,
    call,
    call_many,
    cite,
    group_by_size,
    quote_sources,
    source_block,
)
from ragqa.chains.prompts import Prompts
from ragqa.errors import BudgetError
from ragqa.llm.base import LLM, Message
from ragqa.types import Citation, Hit

MAX_ROUNDS = 6


@dataclass
class Piece:
    text: str
    sources: list[Citation]  # merged in rank order as pieces are collapsed


def _numbered(pieces: list[Piece]) -> str:
    return "\n\n".join(p.text for p in pieces)


def _user(template: str, question: str, pieces: list[Piece]) -> list[Message]:
    return [{"role": "user", "content": template.format(question=question, summaries=_numbered(pieces))}]


def combine_messages(question: str, pieces: list[Piece], prompts: Prompts) -> list[Message]:
    """LangChain's chat layout, as stuff has it: the summaries close the system message (`combine_context`) and the
    question alone is the user's turn. With the question before the summaries in one user message, the 1.5B named a
    multi-hop question's bridge instead of its answer ("Boston Beer Company" for "when was the company founded?":
    HotpotQA 41-100 map_reduce 25.0 EM against LangChain's 33.1, docs/answers.md). A `combine` that
    holds {summaries} (a prompts file written before `combine_context`) stays one user message."""
    summaries = _numbered(pieces)
    if "{summaries}" in prompts.combine:
        return prompts.instructed([{"role": "user", "content": prompts.combine.format(question=question,
                                                                                      summaries=summaries)}])
    return prompts.instructed([{"role": "system", "content": prompts.combine_context.format(summaries=summaries)},
                               {"role": "user", "content": prompts.combine.format(question=question)}])


def collapse(pieces: list[Piece], question: str, llm: LLM, budget: Budget, template: str, trace: Trace,
             *, final: Callable[[list[Piece]], list[Message]] | None = None) -> list[Piece]:
    """Collapse rounds until the final prompt (`final(pieces)`) fits; a cap on rounds and a check that each round
    shrinks."""
    final = final or (lambda ps: _user(template, question, ps))
    token_max = budget.prompt_limit - llm.count_messages(final([]))
    group_max = budget.prompt_limit - llm.count_messages(_user(template, question, []))
    rounds = 0
    sizes = [llm.count_tokens(p.text) + 2 for p in pieces]
    while sum(sizes) > token_max:
        rounds += 1
        if rounds > MAX_ROUNDS:
            raise BudgetError(f"map_reduce: still {sum(sizes)} tokens after {MAX_ROUNDS} collapse rounds "
                              f"(token_max {token_max})")
        groups = group_by_size(sizes, group_max)
        with trace.step(f"collapse_{rounds}") as step:
            batch = [_user(template, question, [pieces[i] for i in g]) for g in groups]
            completions = call_many(llm, batch, budget, step)
            step.detail = {"pieces_in": len(pieces), "pieces_out": len(groups)}
        new = [Piece(c.text.strip(), [s for i in g for s in pieces[i].sources]) for g, c in zip(groups, completions)]
        new_sizes = [llm.count_tokens(p.text) + 2 for p in new]
        if len(new) >= len(pieces) and sum(new_sizes) >= sum(sizes):
            raise BudgetError(f"map_reduce: summaries stopped shrinking ({sum(sizes)} -> {sum(new_sizes)} tokens)",
                              hint="Use fewer chunks (-k) or a model with a larger context window.")
        pieces, sizes = new, new_sizes
    return pieces


def map_reduce(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
               on_token: Callable[[str], None] | None = None) -> Answer:
    trace = Trace()
    with trace.step("map") as step:
        batch = [[{"role": "user", "content": prompts.map.format(context=source_block(i, h), question=question)}]
                 for i, h in enumerate(hits, 1)]
        completions = call_many(llm, batch, budget, step)
    pieces = []
    for i, (hit, c) in enumerate(zip(hits, completions), 1):
        text = c.text.strip()
        if text and text.upper().strip(". ") != "NONE":
            pieces.append(Piece(f"[{i}] ({hit.filename}, p. {hit.page_start}) {text}", cite([hit])))
    step.detail = {"chunks": len(hits), "relevant": len(pieces)}
    if not pieces:  # nothing relevant anywhere: answer from the chunks' own text rather than from nothing
        pieces = [Piece(source_block(i, h), cite([h])) for i, h in enumerate(hits, 1)]
    pieces = collapse(pieces, question, llm, budget, prompts.collapse, trace,
                      final=lambda ps: combine_messages(question, ps, prompts))
    with trace.step("combine") as step:
        completion = call(llm, combine_messages(question, pieces, prompts), budget, step, on_token=on_token)
    sources = _merge([s for p in pieces for s in p.sources], hits)
    return Answer(quote_sources(completion.text.strip(), hits), sources, "map_reduce", trace)


def _merge(sources: list[Citation], hits: list[Hit]) -> list[Citation]:
    rank = {h.chunk_id: i for i, h in enumerate(hits)}
    unique = {s.chunk_id: s for s in sources}
    return sorted(unique.values(), key=lambda s: rank.get(s.chunk_id, len(rank)))
