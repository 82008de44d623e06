"""What every chain shares: the token budget, the trace, the answer, and formatting of sources."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field

from ragqa.cjk import with_measure_word
from ragqa.errors import BudgetError
from ragqa.llm.base import LLM, Completion, Message
from ragqa.types import Citation, Hit

MARGIN = 16  # tokens kept free for template details the count may miss

# Who hears that a step began (the web page shows "map...", then "combine..."): set around one answer, in its
# thread, so no chain has to pass a callback along.
_step_listener: ContextVar[Callable[[str], None] | None] = ContextVar("ragqa_step_listener", default=None)


@contextmanager
def steps_heard_by(listener: Callable[[str], None] | None) -> Iterator[None]:
    token = _step_listener.set(listener)
    try:
        yield
    finally:
        _step_listener.reset(token)


def step_began(name: str) -> None:
    listener = _step_listener.get()
    if listener is not None:
        listener(name)


@dataclass(frozen=True)
class Budget:
    """Prompt tokens available = the model's real context window - the answer's reserve - a margin."""

    context_window: int
    max_tokens: int = 384

    @classmethod
    def for_llm(cls, llm: LLM, max_tokens: int = 384) -> Budget:
        return cls(llm.context_window, max_tokens)

    @property
    def prompt_limit(self) -> int:
        return self.context_window - self.max_tokens - MARGIN

    def completion_room(self, prompt_tokens: int) -> int:
        """How many tokens may be generated after a prompt of this size without overflowing."""
        return min(self.max_tokens, self.context_window - prompt_tokens - MARGIN)


@dataclass
class Step:
    name: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached_tokens: int = 0  # prompt tokens the backend's KV cache already held (not evaluated again)
    max_prompt_tokens: int = 0  # the largest single prompt: tests check it against the window
    cut: int = 0  # replies that stopped at their token limit, mid-answer ("length")
    detail: dict = field(default_factory=dict)

    def add(self, completions: list[Completion]) -> None:
        self.calls += len(completions)
        for c in completions:
            self.prompt_tokens += c.prompt_tokens
            self.cached_tokens += c.cached_tokens
            self.completion_tokens += c.completion_tokens
            self.max_prompt_tokens = max(self.max_prompt_tokens, c.prompt_tokens)
            self.cut += c.finish_reason == "length"


@dataclass
class Trace:
    steps: list[Step] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step_began(name)
        step = Step(name)
        start = time.perf_counter()
        try:
            yield step
        finally:
            step.seconds = round(time.perf_counter() - start, 3)
            self.steps.append(step)

    def totals(self) -> dict:
        return {"calls": sum(s.calls for s in self.steps),
                "prompt_tokens": sum(s.prompt_tokens for s in self.steps),
                "cached_tokens": sum(s.cached_tokens for s in self.steps),
                "completion_tokens": sum(s.completion_tokens for s in self.steps),
                "seconds": round(sum(s.seconds for s in self.steps), 3),
                "max_prompt_tokens": max((s.max_prompt_tokens for s in self.steps), default=0),
                "cut": sum(s.cut for s in self.steps)}

    @property
    def finish_reason(self) -> str:
        """"length" when the step that wrote the answer (the last one) was cut at its token limit, else "stop"."""
        return "length" if self.steps and self.steps[-1].cut else "stop"

    def to_dict(self) -> dict:
        return {**self.totals(), "steps": [asdict(s) for s in self.steps]}


@dataclass
class Answer:
    answer: str
    sources: list[Citation]
    chain: str
    trace: Trace
    abstained: bool = False
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"answer": self.answer, "chain": self.chain, "abstained": self.abstained,
                "finish_reason": self.trace.finish_reason, "sources": [asdict(s) for s in self.sources],
                "trace": self.trace.to_dict(), **self.detail}


def cite(hits: list[Hit]) -> list[Citation]:
    """Citations in retrieval order, one per chunk (a passage cites the chunk retrieval matched)."""
    seen, out = set(), []
    for hit in hits:
        hit = hit.matched()
        if hit.chunk_id not in seen:
            seen.add(hit.chunk_id)
            out.append(Citation.from_hit(hit))
    return out


def source_block(n: int, hit: Hit, text: str | None = None) -> str:
    pages = f"p. {hit.page_start}" if hit.page_start == hit.page_end else f"pp. {hit.page_start}-{hit.page_end}"
    return f"[{n}] ({hit.filename}, {pages})\n{(text if text is not None else hit.text).strip()}"


_VARIANTS = str.maketrans({**{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"},
                           "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


CARDINALS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
             "sixteen seventeen eighteen nineteen twenty").split()
_ORDINALS = ("zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
             "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth").split()
_TENS = {30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty", 90: "ninety"}
_FIGURE = re.compile(r"(\d{1,2})(st|nd|rd|th)?", re.I)


def _verbatim(answer: str, context: str) -> bool:
    """The answer is in the context as written; a bare figure must stand alone ("7" is not in "2007")."""
    if not _FIGURE.fullmatch(answer):
        return answer in context
    return re.search(rf"(?<![\w.,]){re.escape(answer)}(?!\w|[.,]\d)", context) is not None


def _in_words(answer: str, context: str) -> str | None:
    """A figure the chunk writes only in words ("7" -> "seven", "3rd" -> "third"), as the chunk spells it."""
    match = _FIGURE.fullmatch(answer)
    if not match:
        return None
    n = int(match.group(1))
    word = (_ORDINALS if match.group(2) else CARDINALS)[n] if n <= 20 else (
        None if match.group(2) else _TENS.get(n))
    found = re.search(rf"(?<![\w-]){word}(?![\w-])", context, re.I) if word else None  # not "forty-two"
    return found.group(0) if found else None


def quote(answer: str, context: str) -> str:
    """The answer as the chunk spells it when they differ only in dashes, quotes or case ("24-10" -> "24–10"), or
    when the chunk writes a small number in words and never as the figure ("7" -> "seven"): a citation should
    quote its source, and models re-type an en dash as a hyphen and a number as digits. A match that differs in
    case must stand as whole words ("Yes" is not re-cased from "eyes")."""
    if not answer or len(answer) > 200 or _verbatim(answer, context):
        return answer
    if (words := _in_words(answer, context)) is not None:
        return words
    target, plain = answer.translate(_VARIANTS), context.translate(_VARIANTS)  # one character to one: offsets hold
    at = plain.find(target)
    if at >= 0:
        return context[at:at + len(answer)]
    folded = plain.lower()
    if len(folded) != len(context):  # lower() changed a length (rare scripts): offsets would not map back
        return answer
    target, at = target.lower(), folded.find(target.lower())
    while at >= 0:
        end = at + len(target)
        if not (at and folded[at - 1].isalnum()) and not (end < len(folded) and folded[end].isalnum()):
            return context[at:end]
        at = folded.find(target, at + 1)
    return answer


def quote_sources(answer: str, hits: list[Hit]) -> str:
    """A short answer in its source's spelling (see `quote`), taken from the first chunk in retrieval order that
    holds it; unchanged when any chunk already has it verbatim, when only letter case differs ("The Broncos"
    opening an answer is not the source's mid-sentence "the Broncos"), and for a long answer (which never
    matches). SQuAD scores "24-10" against the source's "24–10" as wrong: refine and stuff lost 2 exact matches
    each on SQuAD's 100 questions to re-typed dashes (docs/answers.md), and stuff 4 to figures for
    the source's words ("7" for "seven"). A figure a Chinese chunk writes with a measure word or unit gets it
    (`cjk.with_measure_word`): the first chunk in retrieval order where the figure stands whole decides."""
    text = answer.strip()
    if not text or len(text) > 200:
        return answer
    if not any(_verbatim(text, h.text) for h in hits):
        for hit in hits:
            quoted = quote(text, hit.text)
            if quoted.lower() != text.lower():
                answer = text = quoted
                break
    for hit in hits:  # a Chinese figure takes the unit its source writes after it ("2009" -> "2009年")
        if (measured := with_measure_word(text, hit.text)) is not None:
            return measured if measured != text else answer
    return answer


def call(llm: LLM, messages: list[Message], budget: Budget, step: Step, *,
         on_token: Callable[[str], None] | None = None, json_schema: dict | None = None) -> Completion:
    """One LLM call that can never overflow the window: the reply gets only the room the prompt leaves."""
    prompt_tokens = llm.count_messages(messages)
    room = budget.completion_room(prompt_tokens)
    if room < min(16, budget.max_tokens):  # a caller may ask for fewer, never for none
        raise BudgetError(f"prompt of {prompt_tokens} tokens leaves no room to answer in a "
                          f"{budget.context_window}-token window")
    if on_token is None:
        completion = llm.complete(messages, max_tokens=room, json_schema=json_schema)
    else:
        parts = []
        for delta in llm.stream(messages, max_tokens=room, json_schema=json_schema):
            parts.append(delta)
            on_token(delta)
        text = "".join(parts)
        used = llm.count_tokens(text) if text else 0
        completion = Completion(text, prompt_tokens, used, "length" if used >= room else "stop",
                                int(getattr(llm, "last_cached_tokens", 0) or 0))
    step.add([completion])
    return completion


def call_many(llm: LLM, batch: list[list[Message]], budget: Budget, step: Step, *,
              json_schema: dict | None = None) -> list[Completion]:
    """A batch (the map step) with one shared reply budget sized for its largest prompt."""
    if not batch:
        return []
    largest = max(llm.count_messages(m) for m in batch)
    room = budget.completion_room(largest)
    if room < min(16, budget.max_tokens):  # a caller may ask for fewer, never for none
        raise BudgetError(f"a map prompt of {largest} tokens does not fit a {budget.context_window}-token window")
    completions = llm.complete_many(batch, max_tokens=room, json_schema=json_schema)
    step.add(completions)
    return completions


def group_by_size(sizes: list[int], token_max: int) -> list[list[int]]:
    """Consecutive groups of indexes whose summed size stays within token_max (a piece larger than that goes
    alone): the collapse step of map_reduce, for answers and for summaries."""
    groups, current, total = [], [], 0
    for i, size in enumerate(sizes):
        if current and total + size > token_max:
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        groups.append(current)
    return groups


def trim_to_tokens(llm: LLM, text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` tokens (binary search on characters, exact counts)."""
    if llm.count_tokens(text) <= limit:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if llm.count_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]
