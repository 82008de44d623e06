"""Graph and auto retrieval on real passages: a second hop that dense misses, a Chinese question through BM25
over bigrams, and deletes that remove exactly one document's entities."""

from __future__ import annotations

import json

import pytest

from conftest import fixture, make_settings
from ragqa.collection import Collection
from ragqa.retrieve.graph import Path, merge
from ragqa.types import Hit, Text

# HotpotQA (train) bridge questions: the first hop names the bridge entity, the question does not.
BRIDGES = {
    "5a8c68c4554299585d9e3689": "Botswana",  # Ayesha Quraishi -> Botswana
    "5ae1e3955542997f29b3c169": "M. Ward",  # Transfiguration of Vincent -> M. Ward
}


@pytest.fixture(scope="module")
def hotpot(tmp_path_factory):
    """The two questions' paragraphs plus those of the file's first 8 questions, one document each."""
    questions = json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json").read_text())
    chosen = [q for q in questions if q["_id"] in BRIDGES] + questions[:8]
    paragraphs = {title: "".join(sentences).strip() for q in chosen for title, sentences in q["context"]}
    coll = Collection.open("hotpot", make_settings(tmp_path_factory.mktemp("hotpot")), create=True)
    report = coll.ingest_texts([Text(title, f"{title}\n{body}") for title, body in paragraphs.items()])
    assert {f.status for f in report.files} == {"ok"} and len(report.files) == len(paragraphs)
    return coll, {q["_id"]: q for q in questions if q["_id"] in BRIDGES}


@pytest.mark.parametrize("qid", sorted(BRIDGES))
def test_graph_finds_the_second_hop_that_dense_misses(hotpot, qid):
    coll, questions = hotpot
    question, second_hop = questions[qid]["question"], BRIDGES[qid]
    first_hop = next(t for t, _ in questions[qid]["supporting_facts"] if t != second_hop)
    dense = [h.filename for h in coll.search(question, k=3, mode="dense")]
    graph = [h.filename for h in coll.search(question, k=3, mode="graph")]
    auto = [h.filename for h in coll.search(question, k=3, mode="auto")]
    assert first_hop in dense and second_hop not in dense
    assert first_hop in graph and second_hop in graph
    assert second_hop in auto
    # the path goes through the bridge entity the first hop mentions
    hop = next(h for h in coll.search(question, k=3, mode="graph") if h.filename == second_hop)
    assert hop.source == "graph"


def test_the_graph_label_marks_only_hits_the_graph_lifted_into_the_top_k():
    """auto's chain choice reads the label (a bridge needs its chunks in one prompt): a hit retrieval had
    ranked in the top k anyway stays retrieval's even when another hit links to it."""
    base = [Hit(i, f"d{i}", f"f{i}.txt", 1, 1, f"text {i}", 1.0, "hybrid", 0) for i in range(5)]
    paths = {1: Path(0, "linked", 0.2), 4: Path(0, "bridge", 0.9)}
    ranked = merge(base, paths, {}, 3)
    assert [h.chunk_id for h in ranked] == [4, 0, 1]
    assert {h.chunk_id: h.source for h in ranked} == {4: "graph", 0: "hybrid", 1: "hybrid"}


def test_graph_entities_know_what_a_paragraph_is_about(hotpot):
    coll, _ = hotpot
    index = coll.retriever.entity_index()
    assert "botswana" in index.about and "m ward" in {k.replace(".", "") for k in index.about}
    kg = coll.store.graph()
    assert kg.about_chunk_ids("botswana")  # the paragraph titled Botswana is about it
    assert set(kg.about_chunk_ids("botswana")) <= set(kg.chunk_ids("botswana"))


def test_chinese_question_finds_its_document_through_lexical_search(tmp_path):
    """CMRC 2018 paragraphs: FTS5 over CJK bigrams finds the paragraph a Chinese question is about, and auto
    (an English-only embedder) follows BM25 rather than fusing a vector that cannot read the question."""
    data = json.loads(fixture("chinese/cmrc2018_dev_part_a_first12.json").read_text())["data"][:12]
    coll = Collection.open("zh", make_settings(tmp_path), create=True)
    coll.ingest_texts([Text(a["title"], a["paragraphs"][0]["context"]) for a in data])
    for article in data[:6]:
        question = article["paragraphs"][0]["qas"][0]["question"]
        assert coll.search(question, k=1, mode="lexical")[0].filename == article["title"], question
        assert coll.search(question, k=1, mode="auto")[0].filename == article["title"], question


def test_delete_removes_one_documents_entities_and_edges_and_nothing_else(tmp_path):
    coll = Collection.open("d", make_settings(tmp_path), create=True)
    texts = [
        Text("Ada Lovelace", "Ada Lovelace worked with Charles Babbage on the Analytical Engine in London."),
        Text("Charles Babbage", "Charles Babbage designed the Analytical Engine. He lived in London."),
        Text("Analytical Engine", "The Analytical Engine was designed by Charles Babbage; Ada Lovelace wrote "
                                  "its first program."),
    ]
    coll.ingest_texts(texts)
    babbage = next(d["doc_id"] for d in coll.documents() if d["filename"] == "Charles Babbage")
    kept = {d["doc_id"] for d in coll.documents()} - {babbage}
    before_rows = sorted(r for d in kept for r in coll.store.docs.mentions(d))
    before_relations = sorted(r for d in kept for r in coll.store.docs.relations(d))
    g = coll.store.graph().g
    before_nodes = {n: {d: sorted(c) for d, c in a["docs"].items() if d != babbage} for n, a in g.nodes(data=True)}
    before_edges = {frozenset(e): {d: sorted(c) for d, c in a["docs"].items() if d != babbage}
                    for *e, a in g.edges(data=True)}
    assert "charles babbage" in coll.retriever.entity_index().about

    coll.delete("Charles Babbage")

    reopened = Collection.open("d", coll.settings)  # rebuilt from disk, not this process's memory
    for c in (coll, reopened):
        g = c.store.graph().g
        assert all(babbage not in a["docs"] and babbage not in a.get("about", {}) for _, a in g.nodes(data=True))
        assert all(babbage not in a["docs"] for *_, a in g.edges(data=True))
        # the entity stays while other documents mention it, but nothing is about it any more
        assert "charles babbage" in g and c.store.graph().about_chunk_ids("charles babbage") == []
        assert "charles babbage" not in c.retriever.entity_index().about
        # everything the other documents contributed is unchanged
        assert sorted(r for d in kept for r in c.store.docs.mentions(d)) == before_rows
        assert sorted(r for d in kept for r in c.store.docs.relations(d)) == before_relations
        assert {n: {d: sorted(x) for d, x in a["docs"].items()} for n, a in g.nodes(data=True)} == {
            n: v for n, v in before_nodes.items() if v}
        assert {frozenset(e): {d: sorted(x) for d, x in a["docs"].items()} for *e, a in g.edges(data=True)} == {
            e: v for e, v in before_edges.items() if v}
        assert c.check() == []
