"""Request and response bodies: they validate input (422 with readable messages) and document the API in the
OpenAPI schema at /docs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ragqa.settings import COLLECTION_NAME

NAME_PATTERN = COLLECTION_NAME
PAGES_PATTERN = r"^\s*[1-9][0-9]{0,8}\s*(-\s*([1-9][0-9]{0,8})?\s*)?$"
MetaKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Chain = Literal["auto", "stuff", "map_reduce", "refine", "map_rerank"]
Retrieval = Literal["dense", "lexical", "hybrid", "graph", "auto"]


class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable kind, e.g. not_found, validation_error, overloaded")
    message: str = Field(description="one sentence saying what went wrong and what to do")


class ErrorBody(BaseModel):
    error: ErrorDetail


def _question(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be blank")
    return v.strip()


class FilterSpec(BaseModel):
    """Which chunks retrieval may return (every condition given must hold): see ragqa/filters.py."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"files": ["nike-*.pdf"], "pages": "40-60", "meta": {"year": "2023"}}]})

    documents: list[str] = Field(default_factory=list, max_length=100, description="doc ids (or 8+ char prefixes)")
    files: list[str] = Field(default_factory=list, max_length=100, description="file-name globs, e.g. *.pdf")
    pages: str | None = Field(None, pattern=PAGES_PATTERN, description='a page or a range: "5", "3-7", "3-" '
                              "(a range that runs backwards matches nothing)")
    meta: dict[MetaKey, str] = Field(default_factory=dict, description="key == value, as given at ingest or upload")
    added_after: datetime | float | None = Field(None, description="ingested at or after (ISO 8601 or Unix seconds)")
    added_before: datetime | float | None = Field(None, description="ingested before (ISO 8601 or Unix seconds)")

    def build(self):
        """The retrieval filter; None when no condition is given."""
        from ragqa.filters import Filter

        def seconds(t):
            return t.timestamp() if isinstance(t, datetime) and t.tzinfo else (
                t.replace(tzinfo=UTC).timestamp() if isinstance(t, datetime) else t)

        return Filter.from_options(documents=self.documents, files=self.files, pages=self.pages, meta=self.meta,
                                   added_after=seconds(self.added_after),
                                   added_before=seconds(self.added_before)) or None


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20000)


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "What did the company earn in 2023?", "collection": "default", "k": 4}]})

    question: str = Field(min_length=1, max_length=4000, description="the question")
    collection: str | None = Field(None, pattern=NAME_PATTERN, description="collection (default from settings)")
    chain: Chain | None = Field(None, description="answer chain (default from settings: auto)")
    k: int | None = Field(None, ge=1, le=50, description="chunks to retrieve (default from settings)")
    retrieval: Retrieval | None = Field(None, description="retrieval mode (default from settings: auto)")
    filter: FilterSpec | None = Field(None, description="only chunks these conditions allow")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=200, description="the conversation "
                                       "before this question, oldest first: a follow-up is rewritten to stand "
                                       "alone before retrieval (the answer's `conversation` says how)")
    instruction: str | None = Field(None, max_length=4000, description="your instruction for the answer (tone, "
                                    "language, length), added after ragqa's own rules about sources")
    stream: bool = Field(False, description="stream Server-Sent Events: `token`*, then `answer`, then `sources`")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        return _question(v)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000, description="what to look for")
    collection: str | None = Field(None, pattern=NAME_PATTERN)
    k: int = Field(5, ge=1, le=100)
    retrieval: Retrieval | None = None
    filter: FilterSpec | None = Field(None, description="only chunks these conditions allow")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        return _question(v)


class Source(BaseModel):
    doc_id: str
    document: str = Field(description="file name")
    page: int = Field(description="1-based page where the cited chunk starts")
    chunk_id: int
    snippet: str
    score: float


class QueryResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    answer: str
    chain: str = Field(description="the chain that ran, e.g. auto:stuff")
    abstained: bool
    sources: list[Source]
    trace: dict[str, Any] = Field(description="LLM calls, prompt and completion tokens and seconds, per step")


class Hit(BaseModel):
    doc_id: str
    document: str
    page: int
    page_end: int
    chunk_id: int
    score: float
    text: str


class SearchResponse(BaseModel):
    collection: str
    hits: list[Hit]


class RejectedFile(BaseModel):
    filename: str
    status: int
    reason: str


class JobAccepted(BaseModel):
    job_id: str
    state: str
    collection: str | None
    files: list[str] = Field(description="accepted files, by their sanitised names")
    rejected: list[RejectedFile] = Field(description="files refused at upload, each with its reason")
    url: str


class Job(BaseModel):
    job_id: str
    kind: Literal["ingest", "summarize"]
    collection: str | None
    state: Literal["queued", "running", "succeeded", "failed"]
    files: list[str]
    progress: dict[str, Any] = Field(description="ingest: files_total, files_done, pages_done, chunks_done, "
                                                 "current; summarize: level, done, total")
    result: dict[str, Any] | None = Field(description="ingest: per-file status and errors; summarize: the summary "
                                                      "and its levels")
    error: str | None
    attempts: int
    notes: list[str] = Field(description="what happened to the job across restarts")
    created_at: float
    started_at: float | None
    finished_at: float | None


class JobList(BaseModel):
    jobs: list[Job]


class CollectionInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    documents: int
    chunks: int
    pages: int


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


class DocumentInfo(BaseModel):
    doc_id: str
    filename: str
    kind: str
    pages: int
    chunks: int
    notes: list[str]
    added_at: float | str | None
    meta: dict[str, Any] = Field(default_factory=dict, description="metadata given when the document was added")


class DocumentList(BaseModel):
    collection: str
    documents: list[DocumentInfo]


class Deleted(BaseModel):
    collection: str
    deleted: list[dict[str, Any]]


class SummarizeDocument(BaseModel):
    """Summarise a document already in a collection (JSON body); to summarise a new file, send it as
    multipart/form-data in the field `file`, with `chain` and `target_words` as form fields."""

    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(None, pattern=NAME_PATTERN)
    doc_id: str = Field(min_length=1, max_length=128, description="doc_id (or a unique 8+ character prefix)")
    chain: Literal["map_reduce", "refine", "stuff"] = "map_reduce"
    target_words: int = Field(200, ge=10, le=2000)


# -- OpenAI-compatible ---------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if isinstance(p, dict))
        return self.content or ""


_BLANK_NOT = {"type": "string", "pattern": r"\S"}
# What question() needs, in the schema: at least one user message with non-blank text (a string, or a text part).
_USER_TEXT = {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"const": "user"},
    "content": {"anyOf": [_BLANK_NOT, {"type": "array", "contains": {
        "type": "object", "required": ["text"], "properties": {"text": _BLANK_NOT}}}]}}}


class ChatRequest(BaseModel):
    """OpenAI's chat request; `model` names the collection. Unknown OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "default", "messages": [{"role": "user", "content": "What is this document about?"}]}]})

    model: str = Field(pattern=NAME_PATTERN, description="the collection to answer from")
    messages: list[ChatMessage] = Field(min_length=1, description="the conversation; the last user message with "
                                        "text is the question, the turns before it its history (a follow-up is "
                                        "rewritten to stand alone), and system messages an instruction for the "
                                        "answer", json_schema_extra={"contains": _USER_TEXT})
    stream: bool = False
    chain: Chain | None = Field(None, description="ragqa extension: answer chain")
    k: int | None = Field(None, ge=1, le=50, description="ragqa extension: chunks to retrieve")
    retrieval: Retrieval | None = Field(None, description="ragqa extension: retrieval mode")
    filter: FilterSpec | None = Field(None, description="ragqa extension: only chunks these conditions allow")
    max_tokens: int | None = Field(None, ge=1, le=32768, description="most tokens each LLM call may generate")
    max_completion_tokens: int | None = Field(None, ge=1, le=32768, description="OpenAI's newer name; wins")

    def _last_question(self) -> int | None:
        return next((i for i in range(len(self.messages) - 1, -1, -1)
                     if self.messages[i].role == "user" and self.messages[i].text().strip()), None)

    def question(self) -> str:
        i = self._last_question()
        return "" if i is None else self.messages[i].text().strip()[:4000]

    def history(self) -> list[dict]:
        """The user and assistant turns before the question (ragqa rewrites a follow-up from them)."""
        i = self._last_question()
        return [{"role": m.role, "content": m.text()} for m in self.messages[:i or 0]
                if m.role in ("user", "assistant")]

    def instruction(self) -> str | None:
        """The system (and developer) messages: an instruction for the answer, after ragqa's own rules."""
        text = "\n".join(m.text().strip() for m in self.messages if m.role in ("system", "developer")).strip()
        return text[:4000] or None
