"""The four chains (stuff, map_reduce, refine, map_rerank) and `auto`; see docs/chains.md for how each
differs from LangChain's."""

from __future__ import annotations

from collections.abc import Callable

from ragqa.chains.auto import prefers_map_rerank
from ragqa.chains.base import Answer, Budget, Trace
from ragqa.chains.map_reduce import map_reduce
from ragqa.chains.map_rerank import map_rerank
from ragqa.chains.prompts import Prompts
from ragqa.chains.refine import refine
from ragqa.chains.stuff import fits, stuff
from ragqa.errors import ConfigError
from ragqa.llm.base import LLM
from ragqa.types import Hit

CHAINS = ("auto", "stuff", "map_reduce", "refine", "map_rerank")

__all__ = ["Answer", "Budget", "Trace", "Prompts", "CHAINS", "run_chain"]


def run_chain(name: str, question: str, hits: list[Hit], llm: LLM, *, budget: Budget | None = None,
              prompts: Prompts | None = None, on_token: Callable[[str], None] | None = None,
              abstain_below: int = 30, judge: bool = False) -> Answer:
    budget = budget or Budget.for_llm(llm)
    prompts = prompts or Prompts()
    if name == "auto":
        return _auto(question, hits, llm, budget, prompts, on_token, abstain_below, judge)
    if name == "stuff":
        return stuff(question, hits, llm, budget, prompts, on_token=on_token)
    if name == "map_reduce":
        return map_reduce(question, hits, llm, budget, prompts, on_token=on_token)
    if name == "refine":
        return refine(question, hits, llm, budget, prompts, on_token=on_token)
    if name == "map_rerank":
        return map_rerank(question, hits, llm, budget, prompts, on_token=on_token, abstain_below=abstain_below,
                          judge=judge)
    raise ConfigError(f"unknown chain '{name}'", hint=f"Known: {', '.join(CHAINS)}.")


def _auto(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts,
          on_token: Callable[[str], None] | None, abstain_below: int, judge: bool = False) -> Answer:
    """A factoid answered by one chunk: stuff reads the chunks together, and its answer votes among map_rerank's
    per-chunk answers (the answer is the chunk's span; stuff's stands when map_rerank abstains). Anything else:
    stuff when it fits, else map_reduce (chains/auto.py)."""
    if prefers_map_rerank(question, hits):
        together = stuff(question, hits, llm, budget, prompts) if fits(question, hits, llm, budget, prompts) else None
        first = map_rerank(question, hits, llm, budget, prompts, abstain_below=abstain_below, judge=judge,
                           vote=together.answer if together else None)
        if not first.abstained:
            first.trace.steps[:0] = together.trace.steps if together else []
            first.chain = "auto:map_rerank"
            if on_token:
                on_token(first.answer)
            return first
        if together is not None:  # no chunk held the answer alone: stuff's reading of them all stands
            together.trace.steps.extend(first.trace.steps)
            together.chain = "auto:map_rerank>stuff"
            if on_token:
                on_token(together.answer)
            return together
        answer = map_reduce(question, hits, llm, budget, prompts, on_token=on_token)
        answer.trace.steps[:0] = first.trace.steps
        answer.chain = "auto:map_rerank>map_reduce"
        return answer
    name = "stuff" if fits(question, hits, llm, budget, prompts) else "map_reduce"
    answer = run_chain(name, question, hits, llm, budget=budget, prompts=prompts, on_token=on_token)
    answer.chain = f"auto:{name}"
    return answer
