"""Follow-up questions: "And how many did it have in 2022?" retrieves nothing on its own words, so a question
that leans on earlier turns is rewritten into one that stands alone (LangChain's condense-question step) before
retrieval, and the standalone question is what is searched and answered.

The rewrite costs one short LLM call, so a cheap test decides first whether the question needs it: a question
with no earlier user turn, or one that names what it asks about and points back at nothing, is searched as it
is. A rewrite that brings in nothing from the conversation (the model restated the question) or is not a
question (the model answered it) is not trusted: the earlier questions are put before the follow-up instead, which keeps what
they name in the search. The history is trimmed oldest turn first to fit the rewrite's budget."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragqa.chains.base import Budget, Trace, call, trim_to_tokens
from ragqa.chains.prompts import Prompts
from ragqa.cjk import has_cjk
from ragqa.errors import InputError
from ragqa.llm.base import LLM

REWRITE_TOKENS = 96  # a standalone question, not an answer
HISTORY_TOKENS = 1500  # the most of the conversation the rewrite reads, newest turns kept
_SOURCES = re.compile(r"\n+Sources:\n(?:\[\d+\][^\n]*\n?)+\s*$")  # the list chat completions append to answers

# Words that point back at something said before. "that"/"there" are left out: in a standalone question they
# are mostly a relative pronoun ("the company that makes X") or existential ("is there a ...").
_POINTERS = {"it", "its", "itself", "they", "them", "their", "theirs", "themselves", "he", "him", "his",
             "himself", "she", "her", "hers", "herself", "this", "these", "those", "former", "latter", "same",
             "such", "above", "aforementioned", "one's", "ones"}
_OPENERS = ("and ", "and,", "but ", "so ", "also ", "then ", "what about", "how about", "what else", "why not",
            "or ", "same ", "what if")
_POINTERS_ZH = ("它", "他", "她", "其", "该", "此", "这", "那", "上述", "前者", "后者", "同样", "还有", "另外")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")
_NAMED = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][A-Za-z0-9\-]+|\d|\"[^\"]+\"|“[^”]+”")
_STOP = {"a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "is", "are",
         "was", "were", "be", "been", "do", "does", "did", "what", "which", "who", "whom", "whose", "when",
         "where", "why", "how", "many", "much", "that", "this", "it", "its", "they", "their", "there", "as",
         "has", "have", "had", "can", "could", "would", "should", "will", "not", "about", "into", "than"}


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str


@dataclass(frozen=True)
class Condensed:
    """What a follow-up became: `search` is what retrieval gets, `question` what the chain answers (the same
    standalone question unless the rewrite fell back); `rewritten`: "no" (stood alone), "llm" or "fallback"."""

    search: str
    question: str
    rewritten: str
    reason: str

    def to_dict(self) -> dict:
        return {"standalone": self.question, "searched": self.search, "rewritten": self.rewritten,
                "reason": self.reason}


def turns(messages: Iterable[dict]) -> list[Turn]:
    """A conversation from OpenAI-style messages ({"role", "content"}): user and assistant turns with text, in
    order; a "Sources:" list that ragqa appended to its own answers is dropped (it names files, not content)."""
    out = []
    for m in messages:
        if not isinstance(m, dict) or "role" not in m:
            raise InputError("history: each turn needs a role and a content", hint='e.g. {"role": "user", '
                             '"content": "Who founded NIKE?"}')
        role, content = m["role"], m.get("content")
        if role not in ("user", "assistant", "system", "developer", "tool", "function"):
            raise InputError(f"history: unknown role {role!r}", hint="Use user, assistant or system.")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        text = _SOURCES.sub("", str(content or "")).strip()
        if role in ("user", "assistant") and text:
            out.append(Turn(role, text))
    return out


def stands_alone(question: str, history: Sequence[Turn]) -> tuple[bool, str]:
    """(whether to search the question as it is, why): the cheap test before a rewrite. True when no user turn
    came before; False when the question points back (a pronoun, "what about ...", a Chinese 它/这/该...), is
    three words or fewer, or names nothing (no name, number or quotation) after an earlier turn did."""
    if not any(t.role == "user" for t in history):
        return True, "first question"
    q = question.strip()
    if has_cjk(q):
        hit = next((p for p in _POINTERS_ZH if p in q), None)
        return (False, f"points back ({hit})") if hit else (True, "names what it asks about")
    lower = q.lower()
    words = [w.lower().strip("'’") for w in _WORD.findall(q)]
    pointer = next((w for w in words if w in _POINTERS), None)
    if pointer:
        return False, f"points back ({pointer})"
    if lower.startswith(_OPENERS):
        return False, "continues the last question"
    if len(words) <= 3:
        return False, "too short to stand alone"
    if not _NAMED.search(q):
        return False, "names nothing"
    return True, "names what it asks about"


def specifics(text: str) -> set[str]:
    """The figures and names (capitalised words after the first) a question gives: "2022", "Converse"."""
    words = _WORD.findall(text)
    return {w.lower() for i, w in enumerate(words) if any(c.isdigit() for c in w) or (i and w[0].isupper())}


def content_words(text: str) -> set[str]:
    if has_cjk(text):
        return {ch for ch in text if has_cjk(ch)}
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def fit_history(history: Sequence[Turn], llm: LLM, limit: int) -> list[Turn]:
    """The newest turns whose lines fit `limit` tokens; the oldest go first, and a newest turn that alone is too
    long keeps its start."""
    kept, used = [], 0
    for turn in reversed(history):
        line = _line(turn)
        size = llm.count_tokens(line) + 1
        if used + size > limit:
            if not kept:
                kept.append(Turn(turn.role, trim_to_tokens(llm, turn.text, max(limit - 8, 0))))
            break
        kept.append(turn)
        used += size
    return list(reversed(kept))


def _line(turn: Turn) -> str:
    return f"{'Human' if turn.role == 'user' else 'Assistant'}: {turn.text}"


def _clean(text: str) -> str:
    text = text.strip().split("\n")[0].strip()
    text = re.sub(r"^(standalone question|question|rephrased question)\s*[:：]\s*", "", text, flags=re.I)
    return text.strip().strip('"“”\'').strip()


def fallback(question: str, history: Sequence[Turn]) -> tuple[str, str]:
    """(what to search, what to answer) without a usable rewrite: the earlier user questions, newest last,
    before the follow-up, so what they named stays in the search; the answer reads the follow-up after the
    question it follows."""
    earlier = [t.text for t in history if t.role == "user"][-3:]
    return " ".join([*earlier, question]), f"Earlier questions: {' '.join(earlier)}\nFollow-up question: {question}"


def usable(rewritten: str, question: str, chat_history: str) -> bool:
    """A rewrite is trusted when it is a question again (not the model's answer to it), of a question's length,
    keeps the figures and names the follow-up gives, and brings in something from the conversation that the follow-up lacked (else it resolved nothing)."""
    if not 0 < len(rewritten) <= 4 * len(question) + 200:
        return False
    if question.rstrip().endswith(("?", "？")) and not rewritten.endswith(("?", "？")):
        return False
    if not specifics(question) <= specifics(rewritten):  # it dropped what the follow-up itself asks about
        return False
    return bool(content_words(rewritten) & (content_words(chat_history) - content_words(question)))


def condense(question: str, history: Sequence[Turn], llm: LLM, prompts: Prompts, trace: Trace, *,
             budget: Budget, always: bool = False) -> Condensed:
    """The question to search and to answer, and what was done. At most one LLM call, recorded in `trace` as
    the step "rewrite". `always`: rewrite after any user turn, without the cheap test (what the benchmark
    measures the test against)."""
    alone, reason = stands_alone(question, history)
    if always and any(t.role == "user" for t in history):
        alone, reason = False, "always"
    if alone:
        return Condensed(question, question, "no", reason)
    limit = min(HISTORY_TOKENS, budget.prompt_limit - REWRITE_TOKENS)
    kept = fit_history(history, llm, limit - llm.count_tokens(prompts.condense.format(chat_history="",
                                                                                         question=question)))
    chat_history = "\n".join(_line(t) for t in kept)
    messages = [{"role": "user", "content": prompts.condense.format(chat_history=chat_history, question=question)}]
    with trace.step("rewrite") as step:
        completion = call(llm, messages, Budget(budget.context_window, REWRITE_TOKENS), step)
        rewritten = _clean(completion.text)
        step.detail = {"reason": reason, "history_turns": len(kept), "history_dropped": len(history) - len(kept),
                       "reply": completion.text.strip()[:300]}
        if usable(rewritten, question, chat_history):
            step.detail["used"] = "llm"
            return Condensed(rewritten, rewritten, "llm", reason)
        step.detail["used"] = "fallback"
        return Condensed(*fallback(question, history), "fallback", reason)
