"""GraphExtractor protocol and the default extractor: fast, offline, no LLM.

In the spirit of GraphRAG's "fast" mode: entities are proper-noun spans and acronyms, normalised to a key;
relations are co-occurrence within a sentence. An LLM triple extractor can plug in behind the same protocol.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

from ragqa.types import Chunk


@dataclass(frozen=True)
class Mention:
    entity: str  # normalised key
    label: str  # surface form
    type: str
    ordinal: int  # chunk ordinal within its document
    about: bool = False  # the chunk is about this entity (title, heading, subject), not just mentioning it


@dataclass(frozen=True)
class Triple:
    head: str
    relation: str
    tail: str
    ordinal: int


class GraphExtractor(Protocol):
    name: str

    def extract(self, chunks: list[Chunk], title: str | None = None) -> tuple[list[Mention], list[Triple]]: ...


_SENTENCES = re.compile(r"(?<=[.!?;:])\s+|\n+|(?<=[。！？；])")
_WORD = r"[A-Z][\w'’&.-]*[\w]|[A-Z]"
_SPAN = re.compile(rf"(?:{_WORD})(?:\s+(?:(?:of|the|for|de|von|van|der|du|la|&)\s+)?(?:{_WORD}))*"
                   r"(?:,?\s+(?:Inc|Ltd|LLC|Corp|Co|plc|S\.A|AG|GmbH)\b\.?)?")
_ORG_SUFFIX = {"inc", "inc.", "corp", "corp.", "corporation", "company", "co.", "ltd", "ltd.", "llc", "plc",
               "group", "holdings", "university", "bank", "association", "institute", "foundation", "agency"}
# Capitalised only because they start a sentence or a heading, never entities on their own.
_STOP = set("""a an the this that these those it its in on at of for to from by with as and or but if when while
where which who whom what why how all any each every some no not our we you your he she they them their his her
i me my mine us there here then than so such also however although because since after before during under
over into out up down about above below between through per via more most many much other another one two three
first second new total net see refer note item part table page section year years fiscal our january february march
april may june july august september october november december monday tuesday wednesday thursday friday saturday
sunday mr mrs ms dr sir chapter yes oh well""".split())


def fold(text: str) -> str:
    """'Alû' -> 'alu': accents are spelled inconsistently across documents."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise(label: str) -> str:
    key = fold(label.replace("’", "'").replace("_", " ")).strip(" .,'\"").casefold()
    key = re.sub(r"'s$", "", key)
    key = re.sub(r",?\s+(inc|ltd|llc|corp|co|plc)\.?$", "", key)  # "NIKE, Inc." and "Nike" are one entity
    key = re.sub(r"^the\s+", "", key)
    return re.sub(r"\s+", " ", key)


_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")  # "Lilu (mythology)" is about Lilu
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.{2,80}?)\s*#*\s*$", re.MULTILINE)
_SUBJECT_VERB = re.compile(r"^\s*(?:,|\(|is\b|was\b|are\b|were\b|has\b|had\b)")
# "X, also known as Y" / "originally published as Y": the first sentence names the subject's other names.
_ALIAS = re.compile(r"\b(?:also|better|commonly|formerly|originally|previously|simply|popularly)\s+"
                    r"(?:known|called|published|titled|named|released|referred to)\s+as\s+[\"“]?"
                    r"([A-Z][\w'’&.-]*(?:\s+(?:of|the|de|and|&|[A-Z][\w'’&.-]*))*)")


def title_entity(title: str) -> tuple[str, str] | None:
    """A document title -> (key, label) of the entity the document is about; None when it names nothing."""
    label = _DISAMBIGUATION.sub("", title.replace("_", " ")).strip()
    key = normalise(label)
    if len(key) < 2 or key in _STOP or key.replace(".", "").isdigit():
        return None
    return key, label


def _type_of(label: str) -> str:
    words = label.split()
    if words[-1].casefold() in _ORG_SUFFIX:
        return "ORG"
    if len(words) == 1 and label.isupper() and len(label) >= 2:
        return "ACRONYM"
    return "ENTITY"


class FastExtractor:
    name = "fast"

    def __init__(self, max_span_words: int = 6, max_entities_per_sentence: int = 12):
        self.max_span_words = max_span_words
        self.max_per_sentence = max_entities_per_sentence

    def spans(self, sentence: str) -> list[tuple[str, str]]:
        found = []
        for m in _SPAN.finditer(sentence):
            words = m.group(0).split()
            while words and words[0].casefold().strip(".") in _STOP:
                words = words[1:]
            while words and words[-1].casefold() in {"of", "the", "for", "&", "de", "la"}:
                words = words[:-1]
            if not words or len(words) > self.max_span_words:
                continue
            label = " ".join(words)
            key = normalise(label)
            if len(key) < 2 or key in _STOP or key.replace(".", "").isdigit():
                continue
            found.append((key, label))
        return found

    def about(self, chunks: list[Chunk], title: str | None = None) -> dict[int, dict[str, str]]:
        """Per chunk ordinal, the entities it is about: the document's title (and the other names its first
        sentence gives it) for every chunk; Markdown headings for their chunk; without a title, the subject
        that opens the document's first sentence."""
        about: dict[int, dict[str, str]] = {c.ordinal: {} for c in chunks}
        whole: dict[str, str] = {}
        named = title_entity(title) if title else None
        sentences = [x for x in _SENTENCES.split(chunks[0].text.strip(), maxsplit=2) if x.strip()] if chunks else []
        if named and len(sentences) > 1 and normalise(sentences[0]) == named[0]:
            sentences = sentences[1:]  # a title line above the text
        first = sentences[0] if sentences else ""
        if named:
            whole[named[0]] = named[1]
        elif first:
            spans = [(m, self.spans(m.group(0))) for m in _SPAN.finditer(first)]
            if spans and spans[0][0].start() <= 4 and spans[0][1] and _SUBJECT_VERB.match(first[spans[0][0].end():]):
                key, label = spans[0][1][0]
                whole[key] = label
        if whole:
            for m in _ALIAS.finditer(first[:400]):
                for key, label in self.spans(m.group(1))[:1]:
                    whole.setdefault(key, label)
        for chunk in chunks:
            about[chunk.ordinal].update(whole)
            for m in _HEADING.finditer(chunk.text):
                for key, label in self.spans(m.group(1))[:1]:
                    about[chunk.ordinal].setdefault(key, label)
        return about

    def extract(self, chunks: list[Chunk], title: str | None = None) -> tuple[list[Mention], list[Triple]]:
        mentions: list[Mention] = []
        for ordinal, entities in self.about(chunks, title).items():
            mentions.extend(Mention(key, label, _type_of(label), ordinal, about=True) for key, label in entities.items())
        pairs: Counter = Counter()
        for chunk in chunks:
            for sentence in _SENTENCES.split(chunk.text):
                spans = self.spans(sentence)
                for key, label in spans:
                    mentions.append(Mention(key, label, _type_of(label), chunk.ordinal))
                keys = sorted({k for k, _ in spans})[: self.max_per_sentence]
                for a, b in combinations(keys, 2):
                    pairs[(a, b, chunk.ordinal)] += 1
        triples = [Triple(a, "co-occurs", b, o) for (a, b, o), n in pairs.items() for _ in range(n)]
        return mentions, triples
