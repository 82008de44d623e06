"""CJK text for FTS5: its unicode61 tokenizer keeps a whole run of Hanzi as one token, so runs become bigrams."""

from __future__ import annotations

import re

_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None


def _bigrams(match: re.Match) -> str:
    run = match.group(0)
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i:i + 2] for i in range(len(run) - 1)) + " "


def bigram_cjk(text: str) -> str:
    """'我爱北京' -> ' 我爱 爱北 北京 '; other text is untouched (English keeps the porter stemmer)."""
    return _CJK_RUN.sub(_bigrams, text)


def cjk_share(text: str) -> float:
    """Share of the non-space characters that are CJK."""
    total = sum(not c.isspace() for c in text)
    return sum(len(m.group(0)) for m in _CJK_RUN.finditer(text)) / total if total else 0.0
