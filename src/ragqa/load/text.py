"""Plain text and Markdown: one page, decoded as UTF-8 (with BOM) or, failing that, GB18030 / Latin-1."""

from __future__ import annotations

from ragqa.load.normalize import normalize
from ragqa.types import Page


def decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def load_text(data: bytes) -> list[Page]:
    return [Page(number=1, text=normalize(decode(data)))]
