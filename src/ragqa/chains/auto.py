"""`auto`: one LLM call unless a cheap check says more will help.

The default answers in one stuff call. A question that asks for one fact (a name, number, date, place; by its
shape) gets stuff's JSON reading: the model's verdict ("found") comes with its answer, and the answer is checked
against the chunks for free. Only a draft that says the chunks do not hold the answer, or whose answer no chunk
holds word for word, pays for more calls: each chunk answers alone (map_rerank) and the draft votes among their
answers. Measured on held-out questions the rules were not decided on (docs/answers.md, bench/auto_chain.py):
on CPU every call is seconds a user waits, and the calls map_rerank spent on every factoid bought nothing there.
"""

from __future__ import annotations

import re

from ragqa.cjk import CJK_CHAR
from ragqa.llm.base import LLM

# A factoid asks for one name, number, date or place. Questions asking for reasons, processes, lists,
# summaries or comparisons are not factoids, whatever word they start with.
_FACTOID_EN = re.compile(
    r"^\s*(?:(?:in|on|at|by|for|from|of|to|during|since|after|before)\s+)?"
    r"(?:who|whom|whose|when|where|which|what|how\s+(?:many|much|long|old|far|big|large|tall|often))\b",
    re.I)
_NOT_FACTOID_EN = re.compile(
    r"\b(?:why|explain|describe|summari[sz]e|compare|list|discuss|difference|differ|both|either|neither|"
    r"same|main|key|overview|in\s+common)\b|\bor\b|\bhow\s+(?:do|does|did|is|are|was|were|can|could|should|would|to)\b",
    re.I)
_FACTOID_ZH = re.compile(r"谁|什么|哪|几|多少|何时|何地|何年|多久|多大|多长|多高")
_NOT_FACTOID_ZH = re.compile(r"为什么|为何|如何|怎么|怎样|总结|概括|描述|比较|区别|还是|列举|哪些")


def is_factoid(question: str) -> bool:
    """A short question that asks for one fact (English or Chinese)."""
    q = question.strip()
    if len(CJK_CHAR.findall(q)) > len(q) / 3:
        return len(q) <= 60 and bool(_FACTOID_ZH.search(q)) and not _NOT_FACTOID_ZH.search(q)
    return len(q.split()) <= 30 and bool(_FACTOID_EN.match(q)) and not _NOT_FACTOID_EN.search(q)


def reads_one_fact(question: str, llm: LLM) -> bool:
    """stuff reads this question in JSON (and its answer is checked): a factoid, on a backend that can
    constrain its output to a schema."""
    return llm.supports_json and is_factoid(question)
