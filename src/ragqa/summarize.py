"""Recursive summarisation of long texts: chunk summaries, then levels of group summaries, each level one
batch, until one summary remains. Every LLM result is cached in SQLite by (model, prompt, text), so an
interrupted run resumes where it stopped and a finished one costs nothing to repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ragqa.chains.base import Budget, Trace, call_many, group_by_size, trim_to_tokens
from ragqa.chains.prompts import Prompts
from ragqa.errors import BudgetError, InputError
from ragqa.llm.base import LLM, Completion, Message
from ragqa.llm.cached import ReplyCache

MAX_LEVELS = 8
CACHE_BATCH = 8  # results are written to the cache after every this many calls


@dataclass
class Summary:
    summary: str
    levels: list[int]  # pieces at each level: chunks, then each collapse, ending in 1
    trace: Trace
    cached_calls: int = 0
    level_texts: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"summary": self.summary, "levels": self.levels, "cached_calls": self.cached_calls,
                "trace": self.trace.to_dict()}


class _Runner:
    """Runs a batch through the cache: hits are free, misses go to the LLM in cached slices."""

    def __init__(self, llm: LLM, budget: Budget, cache: ReplyCache | None, on_progress):
        self.llm, self.budget, self.cache, self.on_progress = llm, budget, cache, on_progress
        self.cached = 0

    def run(self, level: str, batch: list[list[Message]], step) -> list[str]:
        out: list[str | None] = [None] * len(batch)
        keys = [ReplyCache.key(self.llm.name, m, max_tokens=self.budget.max_tokens) for m in batch]
        todo = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache else None
            if hit is not None:
                out[i] = hit.text
                self.cached += 1
            else:
                todo.append(i)
        done = len(batch) - len(todo)
        self.on_progress(level, done, len(batch))
        for start in range(0, len(todo), CACHE_BATCH):
            idx = todo[start:start + CACHE_BATCH]
            completions = call_many(self.llm, [batch[i] for i in idx], self.budget, step)
            for i, c in zip(idx, completions):
                out[i] = c.text.strip()
                if self.cache:
                    self.cache.put(keys[i], Completion(out[i], c.prompt_tokens, c.completion_tokens))
            done += len(idx)
            self.on_progress(level, done, len(batch))
        return [t or "" for t in out]


def split_for_llm(text: str, llm: LLM, chunk_tokens: int) -> list[str]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from ragqa.split import SEPARATORS

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_tokens, chunk_overlap=0, separators=SEPARATORS,
                                              keep_separator="end", length_function=llm.count_tokens)
    return [c for c in splitter.split_text(text) if c.strip()]


def summarize_text(text: str, llm: LLM, *, budget: Budget, prompts: Prompts | None = None,
                   chain: str = "map_reduce", target_words: int = 200, chunk_tokens: int | None = None,
                   cache: ReplyCache | None = None,
                   on_progress: Callable[[str, int, int], None] | None = None) -> Summary:
    prompts = prompts or Prompts()
    notify = on_progress or (lambda level, done, total: None)
    if not text.strip():
        raise InputError("nothing to summarise: the text is empty")
    overhead = llm.count_messages([{"role": "user", "content": prompts.summarize_map.format(text="")}])
    chunk_tokens = chunk_tokens or max(256, min(2048, (budget.prompt_limit - overhead) // 2))
    chunk_tokens = min(chunk_tokens, budget.prompt_limit - overhead)
    chunks = split_for_llm(text, llm, chunk_tokens)
    trace = Trace()
    runner = _Runner(llm, budget, cache, notify)

    def msg(template: str, body: str, **kw) -> list[Message]:
        return [{"role": "user", "content": template.format(text=body, **kw)}]

    if chain == "stuff":
        with trace.step("stuff") as step:
            final = runner.run("summary", [msg(prompts.summarize_final, text, words=target_words)], step)[0]
        return Summary(final, [1], trace, runner.cached)
    if chain == "refine":
        summary = ""
        with trace.step("refine") as step:
            for i, chunk in enumerate(chunks):
                if not summary:
                    messages = msg(prompts.summarize_map, chunk)
                else:
                    room = budget.prompt_limit - llm.count_messages(
                        msg(prompts.summarize_refine, "", existing_answer=summary))
                    messages = msg(prompts.summarize_refine, trim_to_tokens(llm, chunk, max(room, 64)),
                                   existing_answer=summary)
                summary = runner.run(f"refine {i + 1}/{len(chunks)}", [messages], step)[0] or summary
        return Summary(summary, [len(chunks), 1], trace, runner.cached)
    if chain != "map_reduce":
        raise InputError(f"unknown summarisation chain '{chain}'", hint="Use map_reduce, refine or stuff.")

    with trace.step("level_1") as step:
        pieces = runner.run("level 1", [msg(prompts.summarize_map, c) for c in chunks], step)
    levels, level_texts = [len(chunks)], [pieces]
    final_overhead = llm.count_messages(msg(prompts.summarize_final, "", words=target_words))
    combine_overhead = llm.count_messages(msg(prompts.summarize_combine, ""))
    token_max = budget.prompt_limit - max(final_overhead, combine_overhead)
    while True:
        sizes = [llm.count_tokens(p) + 2 for p in pieces]
        if sum(sizes) <= token_max:
            break
        if len(levels) >= MAX_LEVELS:
            raise BudgetError(f"summaries still {sum(sizes)} tokens after {MAX_LEVELS} levels")
        groups = group_by_size(sizes, token_max)
        name = f"level_{len(levels) + 1}"
        with trace.step(name) as step:
            new = runner.run(name.replace("_", " "),
                             [msg(prompts.summarize_combine, "\n\n".join(pieces[i] for i in g)) for g in groups], step)
        new_sizes = [llm.count_tokens(p) + 2 for p in new]
        if len(new) >= len(pieces) and sum(new_sizes) >= sum(sizes):
            raise BudgetError(f"summaries stopped shrinking ({sum(sizes)} -> {sum(new_sizes)} tokens)")
        pieces = new
        levels.append(len(pieces))
        level_texts.append(pieces)
    with trace.step("final") as step:
        final = runner.run("final", [msg(prompts.summarize_final, "\n\n".join(pieces), words=target_words)], step)[0]
    levels.append(1)
    level_texts.append([final])
    return Summary(final, levels, trace, runner.cached, level_texts)
