"""Plain data passed between pipeline steps; frozen so a step cannot mutate another's input."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, as a reader sees it
    text: str
    note: str | None = None  # e.g. "no text layer (needs OCR)"


@dataclass(frozen=True)
class Document:
    doc_id: str  # sha256 of the file bytes: same bytes, same id
    filename: str
    path: str
    pages: tuple[Page, ...]
    kind: str = "pdf"  # pdf | text
    title: str | None = None  # what the document is about, when known (a text's title); the graph uses it
    meta: dict = field(default_factory=dict, hash=False, compare=False)  # the caller's metadata, kept as given

    @property
    def text_pages(self) -> list[Page]:
        return [p for p in self.pages if p.text.strip()]


@dataclass(frozen=True)
class Text:
    """An in-memory document (a paragraph, a web page's text): ingested like a file, one page, titled."""

    title: str
    text: str
    source: str | None = None  # a stable name; a new text under the same source replaces the old one
    meta: dict = field(default_factory=dict, hash=False, compare=False)  # kept with the document, returned as given


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    ordinal: int
    text: str
    page_start: int
    page_end: int
    char_start: int  # offsets into the document's joined text (pages joined by "\n\n")
    char_end: int
    chunk_id: int | None = None  # docstore row id, set once stored


@dataclass(frozen=True)
class Part:
    """One chunk inside a passage's text: its id, pages, and where its new text starts and ends."""

    chunk_id: int
    page_start: int
    page_end: int
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    doc_id: str
    filename: str
    page_start: int
    page_end: int
    text: str
    score: float
    source: str = "dense"  # which retriever found it
    ordinal: int = 0
    parts: tuple[Part, ...] = ()  # a passage (retrieve/passages.py): the chunks its text is stitched from

    def matched(self, offset: int | None = None) -> Hit:
        """The single chunk to cite: for a passage, the one holding `offset` in its text (where an answer was
        found), else the chunk retrieval matched; a plain hit is itself."""
        if not self.parts:
            return self
        part = next((p for p in self.parts if offset is not None and p.start <= offset < p.end), None) or \
            next((p for p in self.parts if p.chunk_id == self.chunk_id), self.parts[0])
        return replace(self, chunk_id=part.chunk_id, page_start=part.page_start, page_end=part.page_end,
                       text=self.text[part.start:part.end], parts=())


@dataclass(frozen=True)
class Citation:
    doc_id: str
    document: str
    page: int
    chunk_id: int
    snippet: str
    score: float = 0.0

    @classmethod
    def from_hit(cls, hit: Hit, snippet_chars: int = 240) -> Citation:
        snippet = " ".join(hit.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1].rstrip() + "…"
        return cls(hit.doc_id, hit.filename, hit.page_start, hit.chunk_id, snippet, round(hit.score, 4))


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class FileResult:
    """One row of an ingest report: every file ends ok, unchanged or failed, with a reason."""

    path: str
    status: str  # ok | unchanged | failed
    reason: str = ""
    doc_id: str | None = None
    pages: int = 0
    chunks: int = 0
    notes: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # doc_ids of the older versions this one replaced


@dataclass
class IngestReport:
    collection: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files if f.status == "ok")

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.status == "ok")


@dataclass
class Progress:
    """What long operations report through on_progress; the CLI draws it, the API stores it."""

    files_total: int = 0
    files_done: int = 0
    pages_done: int = 0
    chunks_done: int = 0
    current: str = ""
