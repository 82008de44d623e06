"""Which chunks a search may return: documents, file names, pages, ingestion time, and the metadata given at
ingest. A filter is applied inside every retrieval mode before its top k is cut (dense: the vector index
searches only the allowed ids, or exactly over their stored vectors when they are few; lexical: BM25 over the
allowed rows; graph: expansion reaches only allowed chunks), so a filtered search finds what a collection
holding only those documents would find, not the few survivors of an unfiltered top k."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ragqa.errors import InputError

_PAGES = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d*)\s*)?$")
_META_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Filter:
    """Every condition given must hold (AND); several documents or file globs: any of them (OR)."""

    documents: tuple[str, ...] = ()  # doc ids, or unique prefixes of 8+ characters
    files: tuple[str, ...] = ()  # file-name globs: "*.pdf", "nike-10k-*.pdf"
    pages: tuple[int, int | None] | None = None  # chunks touching pages lo..hi (hi None: to the end)
    added_after: float | None = None  # ingestion time, Unix seconds
    added_before: float | None = None
    meta: tuple[tuple[str, str], ...] = field(default=())  # key == value, as given at ingest

    def __bool__(self) -> bool:
        return bool(self.documents or self.files or self.pages or self.meta or self.added_after is not None
                    or self.added_before is not None)

    @classmethod
    def from_options(cls, *, documents=(), files=(), pages: str | None = None, meta=(), added_after=None,
                     added_before=None) -> Filter:
        """From the CLI's and the API's spellings: pages "3-7", "3-" or "5"; meta "key=value" strings or a dict;
        times as ISO 8601 or Unix seconds. Bad input is an InputError that says which part."""
        return cls(documents=tuple(d.strip() for d in documents if d.strip()),
                   files=tuple(f.strip() for f in files if f.strip()),
                   pages=parse_pages(pages) if pages else None,
                   added_after=parse_time(added_after, "added_after"),
                   added_before=parse_time(added_before, "added_before"),
                   meta=parse_meta(meta))

    def describe(self) -> dict:
        """What a trace or a reply shows of the filter: only the conditions given."""
        out: dict = {}
        if self.documents:
            out["documents"] = list(self.documents)
        if self.files:
            out["files"] = list(self.files)
        if self.pages:
            out["pages"] = f"{self.pages[0]}-{'' if self.pages[1] is None else self.pages[1]}"
        if self.added_after is not None:
            out["added_after"] = self.added_after
        if self.added_before is not None:
            out["added_before"] = self.added_before
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

    def where(self) -> tuple[str, list]:
        """An SQL condition on `chunks c JOIN documents d` and its parameters."""
        parts, params = [], []
        if self.documents:
            parts.append("(" + " OR ".join("d.doc_id = ? OR (length(?) >= 8 AND substr(d.doc_id, 1, length(?)) = ?)"
                                           for _ in self.documents) + ")")
            for ref in self.documents:
                params += [ref, ref, ref, ref]
        if self.files:
            parts.append("(" + " OR ".join("d.filename GLOB ?" for _ in self.files) + ")")
            params += list(self.files)
        if self.pages:
            lo, hi = self.pages
            parts.append("c.page_end >= ?")
            params.append(lo)
            if hi is not None:
                parts.append("c.page_start <= ?")
                params.append(hi)
        if self.added_after is not None:
            parts.append("d.added_at >= ?")
            params.append(self.added_after)
        if self.added_before is not None:
            parts.append("d.added_at < ?")
            params.append(self.added_before)
        for key, value in self.meta:
            parts.append("CAST(json_extract(d.meta, ?) AS TEXT) = ?")
            params += [f'$."{key}"', value]
        return " AND ".join(parts) or "1", params

    def matches_file(self, filename: str) -> bool:
        return not self.files or any(fnmatch.fnmatchcase(filename, g) for g in self.files)


def parse_pages(text: str) -> tuple[int, int | None]:
    match = _PAGES.match(text)
    if not match:
        raise InputError(f"pages '{text}' is not a page or a range", hint='Write "5", "3-7" or "3-" (to the end).')
    lo = int(match.group(1))
    hi = lo if match.group(2) is None else (int(match.group(2)) if match.group(2) else None)
    if lo < 1:
        raise InputError(f"pages '{text}' starts before page 1", hint="Pages count from 1.")
    return lo, hi  # a range that runs backwards ("7-3") matches nothing


def parse_meta(items) -> tuple[tuple[str, str], ...]:
    pairs = list(items.items()) if isinstance(items, dict) else []
    if not isinstance(items, dict):
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise InputError(f"metadata filter '{item}' is not key=value", hint='Write e.g. --meta year=2023.')
            pairs.append((key.strip(), value.strip()))
    for key, _ in pairs:
        if not _META_KEY.match(key):
            raise InputError(f"metadata key '{key}' is not a plain name",
                             hint="Letters, digits, '_', '-' and '.', at most 64 characters.")
    return tuple(sorted((k, str(v)) for k, v in pairs))


def parse_time(value, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what} '{text}' is not a time", hint="ISO 8601 (2026-12-01 or 2026-12-01T09:30) "
                         "or Unix seconds.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
