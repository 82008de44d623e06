"""The four chains (stuff, map_reduce, refine, map_rerank) and `auto`; see docs/chains.md for how each
differs from LangChain's."""

from __future__ import annotations

from collections.abc import Callable

from ragqa.chains.auto import reads_one_fact
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


REVISED = "\n\nChecked against each source alone: "  # what a stream shows when auto replaces its draft


def _auto(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts,
          on_token: Callable[[str], None] | None, abstain_below: int, judge: bool = False) -> Answer:
    """One call for almost every question (chains/auto.py): stuff, in JSON for a question that asks for one fact.
    Only when that draft says the chunks do not hold the answer, or no chunk holds the answer it wrote, does each
    chunk answer alone (map_rerank, the draft voting among the chunks' answers). Chunks that do not fit one
    prompt: map_reduce. A stream shows the draft as it is written; a replaced draft is followed by REVISED and
    the answer that replaced it."""
    structured = reads_one_fact(question, llm)
    if not fits(question, hits, llm, budget, prompts, structured=structured):
        answer = map_reduce(question, hits, llm, budget, prompts, on_token=on_token)
        answer.chain = "auto:map_reduce"
        return answer
    draft = stuff(question, hits, llm, budget, prompts, on_token=on_token, structured=structured)
    draft.chain = "auto:stuff"
    if not structured or draft.detail["grounded"]:
        return draft
    found = draft.detail["found"]
    checked = map_rerank(question, hits, llm, budget, prompts, abstain_below=abstain_below, judge=judge,
                         vote=draft.detail["draft"] if found else None)
    checked.trace.steps[:0] = draft.trace.steps
    if checked.abstained and found:  # no chunk alone found an answer either: the draft stands, unsupported
        draft.trace = checked.trace
        draft.chain = "auto:stuff>map_rerank"
        return draft
    checked.chain = "auto:stuff>map_rerank"
    checked.detail["draft"] = draft.detail["draft"]
    if on_token and found and checked.answer != draft.answer:
        on_token(REVISED + checked.answer)
    elif on_token and not found:
        on_token(checked.answer)
    return checked
