"""Light clean-up of extracted text: ligatures, end-of-line hyphenation, whitespace. CJK is left intact."""

from __future__ import annotations

import re

# Explicit table, not NFKC: NFKC would also rewrite full-width CJK punctuation (！？；) the splitter cuts on.
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
     "\u00ad": "", "\x00": "", "\u200b": ""}
)
_HYPHEN_EOL = re.compile(r"(\w)-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_TRAILING = re.compile(r" +\n")
_BLANKS = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_LIGATURES)
    text = _HYPHEN_EOL.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    return text.strip()
