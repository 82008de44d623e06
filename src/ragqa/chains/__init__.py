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
    """A factoid answered by one chunk: map_rerank reads each chunk; when they found different answers, stuff
    reads them together and its answer votes among them (the answer is the chunk's span). When map_rerank
    abstains, stuff's answer stands. Anything else: stuff when it fits, else map_reduce (chains/auto.py)."""
    if prefers_map_rerank(question, hits):
        fitting = fits(question, hits, llm, budget, prompts)
        together: list[Answer] = []

        def second_reading() -> str | None:
            together.append(stuff(question, hits, llm, budget, prompts))
            return together[0].answer

        first = map_rerank(question, hits, llm, budget, prompts, abstain_below=abstain_below, judge=judge,
                           vote=second_reading if fitting else None)
        if not first.abstained:
            if together:
                first.trace.steps[1:1] = together[0].trace.steps  # after the rerank calls, before any judge
            first.chain = "auto:map_rerank"
            if on_token:
                on_token(first.answer)
            return first
        name = "stuff" if fitting else "map_reduce"  # no chunk held the answer alone: read them together
        answer = run_chain(name, question, hits, llm, budget=budget, prompts=prompts, on_token=on_token)
        answer.trace.steps[:0] = first.trace.steps
        answer.chain = f"auto:map_rerank>{name}"
        return answer
    name = "stuff" if fits(question, hits, llm, budget, prompts) else "map_reduce"
    answer = run_chain(name, question, hits, llm, budget=budget, prompts=prompts, on_token=on_token)
    answer.chain = f"auto:{name}"
    return answer
