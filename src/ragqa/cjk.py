"""CJK text: one definition of which characters are CJK, used by indexing, retrieval, the chains and the eval.

Kana, Hangul, the unified ideographs with extension A, and the compatibility ideographs.
"""

from __future__ import annotations

import re

CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")


def has_cjk(text: str) -> bool:
    return CJK_CHAR.search(text) is not None


def cjk_share(text: str) -> float:
    """Share of the letters (alphanumeric characters) that are CJK: the part of a text an English-only embedder
    cannot read. Spaces and punctuation do not count, so a CJK question ending in '？' is all CJK."""
    letters = [c for c in text if c.isalnum()]
    return sum(bool(CJK_CHAR.match(c)) for c in letters) / len(letters) if letters else 0.0


def _bigrams(match: re.Match) -> str:
    run = match.group(0)
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i:i + 2] for i in range(len(run) - 1)) + " "


def bigram_cjk(text: str) -> str:
    """For FTS5, whose unicode61 tokenizer keeps a whole run of Hanzi as one token: '我爱北京' -> ' 我爱 爱北 北京 ';
    other text is untouched (English keeps the porter stemmer)."""
    return _CJK_RUN.sub(_bigrams, text)
