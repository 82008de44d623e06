"""`auto`: pick the chain per question from its shape and from what retrieval found.

Measured with the 1.5B (docs/answers.md): for a short factual question whose answer sits in one chunk,
map_rerank (one chunk's answer, chosen on evidence) beats stuffing k chunks, because the model no longer mixes
neighbouring chunks; but its evidence ties across chunks that each name a plausible answer, and stuff's reading
of all of them together settles those ties better than the retrieval rank. So when the chunks' answers differ,
stuff reads them together and its answer votes among them (chains/__init__.py, map_rerank.voted). A question that needs two
chunks (a bridge the graph expanded to, a comparison of two things) needs them in one prompt: stuff. Everything
else keeps LangChain's rule: stuff when it fits, else map_reduce.
"""

from __future__ import annotations

import re

from ragqa.cjk import CJK_CHAR
from ragqa.types import Hit

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
_CALLED_ZH = re.compile(r"[称名作算]为什么")  # "is called / counts as what", not 为什么 "why"


def is_factoid(question: str) -> bool:
    """A short question that asks for one fact (English or Chinese)."""
    q = question.strip()
    if len(CJK_CHAR.findall(q)) > len(q) / 3:
        plain = _CALLED_ZH.sub("叫什么", q)
        return len(q) <= 60 and bool(_FACTOID_ZH.search(plain)) and not _NOT_FACTOID_ZH.search(plain)
    return len(q.split()) <= 30 and bool(_FACTOID_EN.match(q)) and not _NOT_FACTOID_EN.search(q)


def needs_several_chunks(hits: list[Hit]) -> bool:
    """The graph expanded the ranking: the evidence is a chain of chunks, not one."""
    return any(h.source == "graph" for h in hits)


def prefers_map_rerank(question: str, hits: list[Hit]) -> bool:
    """Also for a single chunk: map_rerank's extractive JSON reading beat stuff's on the same one paragraph
    (SQuAD held-out 100 with the gold paragraphs, `ragqa eval --retrieval gold`: 74 against 65 EM)."""
    return bool(hits) and is_factoid(question) and not needs_several_chunks(hits)
