"""Light clean-up of extracted text: ligatures, end-of-line hyphenation, whitespace. CJK is left intact."""

from __future__ import annotations

import re

# Explicit table, not NFKC: NFKC would also rewrite full-width CJK punctuation (！？；) the splitter cuts on.
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
     "\u00ad": "", "\x00": "", "\u200b": ""}
)
_HYPHEN_EOL = re.compile(r"(\w)-\n(?=[a-z])")
# PDFium marks a hyphen at a line break with U+FFFE (a noncharacter) or U+0002, and joins the lines: it stands
# for a word broken in two ("pat\ufffeterns") or for a compound's own hyphen ("FAA\ufffeapproved"). normalize()
# keeps one U+FFFE as the mark; resolve_line_hyphens() decides per document. Other noncharacters go.
SOFT = "\ufffe"
_SOFT_BREAK = re.compile(r"[\ufffe\x02]\n?")
_NONCHARACTERS = re.compile(r"[\ufdd0-\ufdef\uffff]")
_MARKED = re.compile(r"(\w+)\ufffe(\w+)")
_WORDS = re.compile(r"\w+(?:-\w+)*")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_TRAILING = re.compile(r" +\n")
_BLANKS = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_LIGATURES)
    text = _NONCHARACTERS.sub("", _SOFT_BREAK.sub(SOFT, text))
    text = _HYPHEN_EOL.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    return text.strip()


def resolve_line_hyphens(texts: list[str]) -> list[str]:
    """Each marked line-break hyphen becomes what the rest of the document writes: the joined word when it
    appears whole elsewhere ("Yangarber"), a hyphen when the hyphenated form does ("FAA-approved"); unseen, a
    break before a lower-case letter is a broken word (as `-\\n` is above), otherwise a hyphen."""
    if not any(SOFT in t for t in texts):
        return texts
    seen = {w.casefold() for t in texts for w in _WORDS.findall(t.replace(SOFT, " "))}

    def resolve(m: re.Match) -> str:
        left, right = m.group(1), m.group(2)
        joined, hyphened = (left + right).casefold(), f"{left}-{right}".casefold()
        if hyphened in seen and joined not in seen:
            return f"{left}-{right}"
        if joined in seen or right[:1].islower():
            return left + right
        return f"{left}-{right}"

    return [_MARKED.sub(resolve, t).replace(SOFT, "-") for t in texts]
