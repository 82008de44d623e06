"""Small-to-big: hits read with their neighbouring chunks, touching hits of a document merged into one passage,
and citations that still name one chunk. Real collection: MiniLM, FAISS, SQLite."""

from __future__ import annotations

import pytest

from conftest import make_settings
from ragqa.chains.base import cite
from ragqa.collection import Collection
from ragqa.types import Text

NAMES = ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy", "Juniper", "Kapok", "Larch",
         "Maple", "Nutmeg", "Oak", "Pine", "Quince", "Rowan", "Spruce", "Teak", "Upas", "Vine", "Willow", "Yew"]
# short sentences, so the splitter's 8-token overlap repeats whole sentences between chunks
SENTENCES = [f"{name} station has {i + 2} platforms." for i, name in enumerate(NAMES)]


@pytest.fixture(scope="module")
def coll(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("passages"), chunk_tokens=24, chunk_overlap=8)
    c = Collection.open("p", settings, create=True)
    c.ingest_texts([Text("Railway stations", " ".join(SENTENCES)),
                    Text("Rivers", "The river Wye flows south. The river Usk flows east. The river Taff is short.")])
    yield c
    c.close()


def chunks_of(coll, title_word):
    hits = coll.search(title_word, k=50, mode="lexical")
    doc = next(h.doc_id for h in hits if title_word in h.text)
    rows = coll.store.docs.chunks_between(doc, 0, 10**6)
    return doc, rows


def test_a_hit_is_read_with_its_neighbours_and_cited_as_itself(coll):
    doc, rows = chunks_of(coll, "station")
    assert len(rows) >= 8, "the document must span several chunks for this test"
    assert any(b[4] < a[5] for a, b in zip(rows, rows[1:])), "and its chunks must overlap"
    middle = rows[2]
    hit = next(h for h in coll.search(middle[6], k=20, mode="lexical") if h.chunk_id == middle[0])
    [passage] = coll.retriever.passages([hit], neighbours=1)
    # the text holds chunks 1..3, each once: the splitter's overlap is not repeated
    for row in rows[1:4]:
        assert row[6] in passage.text
    assert rows[0][6] not in passage.text and rows[4][6] not in passage.text
    for sentence in SENTENCES:
        assert passage.text.count(sentence) <= 1
    assert [p.chunk_id for p in passage.parts] == [r[0] for r in rows[1:4]]
    # every part maps back to its chunk's exact text; the citation names the chunk retrieval matched
    for part, row in zip(passage.parts, rows[1:4]):
        assert passage.text[part.start:part.end] == row[6]
    assert passage.matched().chunk_id == hit.chunk_id and passage.matched().text == hit.text
    [citation] = cite([passage])
    assert citation.chunk_id == hit.chunk_id
    # an answer found in a neighbour is cited by that neighbour
    later = rows[3][6].split(".")[-2].strip()
    assert passage.matched(passage.text.rfind(later)).chunk_id == rows[3][0]
    assert coll.retriever.passages([hit], neighbours=0) == [hit]


def test_touching_hits_of_one_document_become_one_passage_at_the_best_rank(coll):
    doc, rows = chunks_of(coll, "station")
    other = coll.search("river Wye", k=1, mode="lexical")[0]
    hits = [h for r in (rows[4], rows[2]) for h in coll.search(r[6], k=20, mode="lexical") if h.chunk_id == r[0]]
    far = [h for h in coll.search(rows[-1][6], k=20, mode="lexical") if h.chunk_id == rows[-1][0]]
    assert len(hits) == 2 and far
    passages = coll.retriever.passages([hits[0], other, hits[1], *far], neighbours=1)
    # chunks 2 and 4 (windows 1-3 and 3-5) merge at the first hit's place; the river stays second
    assert [p.doc_id for p in passages[:2]] == [doc, other.doc_id]
    assert passages[0].chunk_id == hits[0].chunk_id
    assert [p.chunk_id for p in passages[0].parts] == [r[0] for r in rows[1:6]]
    # the last chunk is far from the others: a passage of its own
    assert len(passages) == 3 and passages[2].parts[-1].chunk_id == rows[-1][0]
