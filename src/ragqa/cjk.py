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


# Chinese writes a quantity with its measure word or unit, and the unit is part of the answer: "2009年" for which
# year, "10号" for which shirt number, "11.42亿元" for how much (CMRC's gold spans keep it: of the trial set's 88
# answers that are a figure, none stands bare). Asked for JSON, the 1.5B often writes the figure alone.
_UNIT_ZH = ("平方公里|平方米|立方米|公里|千米|厘米|毫米|米|公顷|公斤|千克|克|吨|亩|美元|港元|欧元|日元|英镑|元|"
            "分钟|小时|秒|天|周|个月|年代|年|月|日|号|岁|人|名|个|位|次|届|座|条|部|本|张|件|家|所|种|层|倍|度|％|"
            "股|处|册|场|集|首|期|篇|项|辆|架|艘|头|只|枚|块|间|户|款|季|局|轮|分")
_MEASURE_ZH = re.compile(rf"[十百千万亿]+(?:{_UNIT_ZH})?|(?:{_UNIT_ZH})")
_FIGURE_END = re.compile(r"\d$")


def with_measure_word(answer: str, context: str) -> str | None:
    """The answer with the measure word or unit its Chinese source writes right after it ("2009" in
    "2009年入选" -> "2009年"); the answer unchanged where its first whole occurrence stands bare, None where the
    context does not hold it. Only an answer ending in a figure, only a whole figure ("7" is not in "2007年")."""
    if not _FIGURE_END.search(answer):
        return None
    at = context.find(answer)
    while at >= 0:
        end = at + len(answer)
        inside = (at and (context[at - 1].isdigit() or context[at - 1] == "." and answer[0].isdigit())) or (
            end < len(context) and (context[end].isdigit() or context[end] in ".," and
                                    end + 1 < len(context) and context[end + 1].isdigit()))
        if not inside:
            unit = _MEASURE_ZH.match(context, end)
            return answer + unit.group(0) if unit else answer
        at = context.find(answer, at + 1)
    return None
