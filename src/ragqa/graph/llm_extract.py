"""The LLM triple extractor: what the fast extractor cannot see, read by a capable model.

The fast extractor finds capitalised names. Multi-hop bridges are often something else: a year, a lower-case
noun phrase, an answer string ("the Mississippi River delta"). A capable model names those, says what each
passage is about when no title does, and labels the relation. Every reply is JSON checked against a schema
(constrained decoding where the backend has it), every name must occur in the passage (no invented
entities), and the fast extractor's output is kept underneath, so a bad reply costs recall, never the graph.
Replies are cached by (model, prompt, passage), so re-ingesting or resuming costs no call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

from ragqa.graph.extract import FastExtractor, Mention, Triple, fold, normalise
from ragqa.llm.base import LLM, json_object
from ragqa.llm.cached import CachedLLM
from ragqa.types import Chunk

log = logging.getLogger(__name__)

SCHEMA = {
    "type": "object",
    "properties": {
        "subject": {"type": "string"},
        "triples": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"head": {"type": "string"}, "relation": {"type": "string"}, "tail": {"type": "string"}},
                "required": ["head", "relation", "tail"],
            },
        },
    },
    "required": ["subject", "triples"],
}

PROMPT = """Extract a knowledge graph from the passage.
Return JSON: {{"subject": "<the entity the passage is mainly about>", "triples": [{{"head": "...", "relation": "...", "tail": "..."}}]}}
Give at most {max_triples} triples, the most informative facts. Heads and tails are short names copied exactly from the passage: people, places, organisations, works, events, dates, numbers. Relations are 1-4 words.
{title}Passage:
{text}"""

_PRONOUNS = {"he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "this", "that", "we", "i",
             "you", "who", "which", "none", "unknown", "n/a", ""}
_SPACES = re.compile(r"\s+")


def _folded(text: str) -> str:
    return _SPACES.sub(" ", fold(text).casefold())


parse_reply = json_object  # the reply's JSON object (a ```json fence, leading prose, damage tolerated), or None


class LLMExtractor:
    """Triples from an LLM, merged over the fast extractor's mentions; batched over every chunk it is given."""

    name = "llm"
    batch_chunks = 8  # chunks per LLM batch (and per commit of in-memory texts): progress, and a resumable cache

    def __init__(self, llm: LLM, cache_path: Path | None = None, *, max_triples: int = 8, max_tokens: int = 320,
                 max_name_words: int = 8):
        self.llm = CachedLLM(llm, cache_path) if cache_path is not None else llm
        self.fast = FastExtractor()
        self.max_triples = max_triples
        self.max_tokens = max_tokens
        self.max_name_words = max_name_words
        self.stats = {"chunks": 0, "unparsed": 0, "repaired": 0, "triples": 0, "dropped_ungrounded": 0}

    def extract(self, chunks: list[Chunk], title: str | None = None) -> tuple[list[Mention], list[Triple]]:
        return self.extract_many([(chunks, title)])[0]

    def extract_many(self, docs: Sequence[tuple[list[Chunk], str | None]]) -> list[tuple[list[Mention], list[Triple]]]:
        """One LLM batch for every chunk of every document (concurrent on a server backend)."""
        jobs = [(d, c, title) for d, (chunks, title) in enumerate(docs) for c in chunks]
        batch = [[{"role": "user", "content": self._prompt(c, title)}] for _, c, title in jobs]
        replies = []
        for start in range(0, len(batch), self.batch_chunks):  # slices: the cache keeps each finished slice
            replies += self.llm.complete_many(batch[start:start + self.batch_chunks], max_tokens=self.max_tokens,
                                              json_schema=SCHEMA if self.llm.supports_json else None)
        out = [self.fast.extract(chunks, title) for chunks, title in docs]
        for (d, chunk, title), reply in zip(jobs, replies, strict=True):
            mentions, triples = self._read(reply.text, chunk, title)
            out[d][0].extend(mentions)
            out[d][1].extend(triples)
        return out

    def _prompt(self, chunk: Chunk, title: str | None) -> str:
        return PROMPT.format(max_triples=self.max_triples, title=f"Title: {title}\n" if title else "", text=chunk.text)

    def _grounded(self, name: object, haystack: str) -> tuple[str, str] | None:
        """(key, label) when `name` is a real name that occurs in the passage or its title."""
        if not isinstance(name, str):
            return None
        label = _SPACES.sub(" ", name).strip(" .,;:'\"")
        key = normalise(label)
        if key in _PRONOUNS or len(key) < 2 or len(label.split()) > self.max_name_words:
            return None
        if _folded(label) not in haystack:
            self.stats["dropped_ungrounded"] += 1
            return None
        return key, label

    def _read(self, reply: str, chunk: Chunk, title: str | None) -> tuple[list[Mention], list[Triple]]:
        self.stats["chunks"] += 1
        data = parse_reply(reply, repair=False)
        cut = data is None
        if cut:  # damaged, mostly cut at max_tokens: keep the triples written before the damage, not the last one
            data = parse_reply(reply)
        if data is None:
            self.stats["unparsed"] += 1
            return [], []
        self.stats["repaired"] += cut
        haystack = _folded(f"{title or ''}\n{chunk.text}")
        mentions: list[Mention] = []
        triples: list[Triple] = []
        subject = self._grounded(data.get("subject"), haystack)
        if subject:
            mentions.append(Mention(subject[0], subject[1], "ENTITY", chunk.ordinal, about=True))
        raw = data.get("triples")
        items = raw if isinstance(raw, list) else []
        for item in (items[:-1] if cut else items)[: self.max_triples]:
            if not isinstance(item, dict):
                continue
            head, tail = self._grounded(item.get("head"), haystack), self._grounded(item.get("tail"), haystack)
            relation = _SPACES.sub(" ", str(item.get("relation") or "")).strip()[:40] or "related to"
            for ent in (head, tail):
                if ent:
                    mentions.append(Mention(ent[0], ent[1], "ENTITY", chunk.ordinal))
            if head and tail and head[0] != tail[0]:
                triples.append(Triple(head[0], relation, tail[0], chunk.ordinal))
        self.stats["triples"] += len(triples)
        return mentions, triples


def extract_all(extractor, docs: Sequence[tuple[list[Chunk], str | None]]) -> list[tuple[list[Mention], list[Triple]]]:
    """Batched where the extractor can batch (the LLM one), one document at a time otherwise."""
    if hasattr(extractor, "extract_many"):
        return extractor.extract_many(docs)
    return [extractor.extract(chunks, title) for chunks, title in docs]
