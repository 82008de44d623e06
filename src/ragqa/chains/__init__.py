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
    """map_rerank for a factoid answered by one chunk; stuff when it fits; else map_reduce (chains/auto.py)."""
    first = None
    if prefers_map_rerank(question, hits):
        first = map_rerank(question, hits, llm, budget, prompts, abstain_below=abstain_below, judge=judge)
        if not first.abstained:
            if on_token:
                on_token(first.answer)
            first.chain = "auto:map_rerank"
            return first
    name = "stuff" if fits(question, hits, llm, budget, prompts) else "map_reduce"
    answer = run_chain(name, question, hits, llm, budget=budget, prompts=prompts, on_token=on_token)
    if first is not None:  # map_rerank found no single chunk with the answer: its calls stay in the trace
        answer.trace.steps[:0] = first.trace.steps
        name = f"map_rerank>{name}"
    answer.chain = f"auto:{name}"
    return answer
