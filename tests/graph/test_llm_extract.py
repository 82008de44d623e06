"""The LLM triple extractor with the real embedded model: grounded names, cached replies, bad replies survived,
and the triples landing in (and leaving) a real collection."""

from __future__ import annotations

import json

import pytest

from conftest import fixture, make_settings
from ragqa.graph.extract import FastExtractor, fold
from ragqa.graph.llm_extract import LLMExtractor, parse_reply
from ragqa.types import Chunk, Text


@pytest.fixture(scope="module")
def passages():
    """Two real HotpotQA paragraphs (title + text)."""
    rows = json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json").read_text())
    out = []
    for title, sentences in rows[0]["context"][:2]:
        out.append((title, "".join(sentences)))
    return out


def _chunks(text: str) -> list[Chunk]:
    return [Chunk("doc", 0, text, 1, 1, 0, len(text))]


def test_names_come_from_the_passage_and_replies_are_cached(passages, llm, tmp_path):
    extractor = LLMExtractor(llm, tmp_path / "graph-llm.sqlite", max_tokens=160)
    docs = [(_chunks(text), title) for title, text in passages]
    results = extractor.extract_many(docs)
    assert extractor.llm.misses == len(docs) and extractor.stats["chunks"] == len(docs)
    for (title, text), (mentions, triples) in zip(passages, results, strict=True):
        fast_keys = {m.entity for m in FastExtractor().extract(_chunks(text), title)[0]}
        assert fast_keys <= {m.entity for m in mentions}  # the fast extractor's names are always kept
        haystack = " ".join(fold(f"{title}\n{text}").casefold().split())
        for m in mentions:
            assert " ".join(fold(m.label).casefold().split()) in haystack, m  # nothing invented
        for t in triples:
            assert t.head != t.tail and t.ordinal == 0
    again = LLMExtractor(llm, tmp_path / "graph-llm.sqlite", max_tokens=160)
    assert again.extract_many(docs) == results and again.llm.misses == 0  # a re-run costs no LLM call


def test_an_unusable_reply_falls_back_to_the_fast_names():
    extractor = LLMExtractor.__new__(LLMExtractor)
    extractor.fast, extractor.max_triples, extractor.max_name_words = FastExtractor(), 8, 8
    extractor.stats = {"chunks": 0, "unparsed": 0, "repaired": 0, "triples": 0, "dropped_ungrounded": 0}
    chunk = _chunks("Ada Lovelace worked with Charles Babbage in London in 1843.")[0]
    assert extractor._read("Sure! Here are the triples:", chunk, None) == ([], [])
    assert extractor.stats["unparsed"] == 1
    fenced = '```json\n{"subject": "Ada Lovelace", "triples": [{"head": "Ada Lovelace", "relation": "worked with", ' \
             '"tail": "Charles Babbage"}, {"head": "Ada Lovelace", "relation": "born in", "tail": "Paris"}, ' \
             '{"head": "she", "relation": "in", "tail": "1843"}, "junk"]}\n```'
    mentions, triples = extractor._read(fenced, chunk, None)
    assert [(t.head, t.relation, t.tail) for t in triples] == [("ada lovelace", "worked with", "charles babbage")]
    assert {m.entity for m in mentions} == {"ada lovelace", "charles babbage", "1843"}  # Paris is not in the text
    assert [m.entity for m in mentions if m.about] == ["ada lovelace"]
    assert extractor.stats["dropped_ungrounded"] == 1
    assert parse_reply('{"subject": "x", "triples": [', repair=False) is None
    assert parse_reply('{"subject": "x", "triples": [') == {"subject": "x", "triples": []}


def test_a_reply_cut_at_max_tokens_keeps_its_whole_triples_but_not_the_cut_one():
    extractor = LLMExtractor.__new__(LLMExtractor)
    extractor.fast, extractor.max_triples, extractor.max_name_words = FastExtractor(), 8, 8
    extractor.stats = {"chunks": 0, "unparsed": 0, "repaired": 0, "triples": 0, "dropped_ungrounded": 0}
    chunk = _chunks("Ada Lovelace worked with Charles Babbage in London in 1843.")[0]
    cut = ('{"subject": "Ada Lovelace", "triples": [{"head": "Ada Lovelace", "relation": "worked with", '
           '"tail": "Charles Babbage"}, {"head": "Charles Babbage", "relation": "worked in", "tail": "Lond')
    mentions, triples = extractor._read(cut, chunk, None)
    # "Lond" is in the passage (inside "London"), so only dropping the last triple keeps it out of the graph
    assert [(t.head, t.relation, t.tail) for t in triples] == [("ada lovelace", "worked with", "charles babbage")]
    assert "lond" not in {m.entity for m in mentions}
    assert extractor.stats["repaired"] == 1 and extractor.stats["unparsed"] == 0


def test_llm_triples_are_stored_and_deleted_with_their_document(passages, tmp_path, monkeypatch):
    from ragqa.collection import Collection

    monkeypatch.setenv("RAGQA_GRAPH_EXTRACTOR", "llm")
    coll = Collection.open("kg", make_settings(tmp_path), create=True)
    report = coll.ingest_texts([Text(title, text, source=title) for title, text in passages])
    assert [f.status for f in report.files] == ["ok", "ok"]
    labels = {label for *_, label, _chunk, _doc in coll.store.docs.relations()}
    assert labels - {"co-occurs"}, "the LLM's relation labels are in the store"
    first = coll.store.docs.find_documents(passages[0][0])[0]["doc_id"]
    kept = [r for r in coll.store.docs.relations() if r[4] != first]
    coll.delete(passages[0][0])
    assert coll.store.docs.relations() == kept and not coll.store.docs.mentions(first)
    assert not coll.store.docs.check()
