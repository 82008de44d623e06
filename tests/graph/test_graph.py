"""The no-LLM graph extractor and the per-document graph."""

from __future__ import annotations

from ragqa.graph.extract import FastExtractor, normalise
from ragqa.graph.kg import KnowledgeGraph
from ragqa.types import Chunk


def test_entities_and_cooccurrence():
    text = ("NIKE, Inc. designs footwear in Beaverton, Oregon. The Company sells through Converse and Jordan Brand. "
            "In fiscal 2023 the Board of Directors approved a dividend.")
    mentions, triples = FastExtractor().extract([Chunk("d", 0, text, 1, 1, 0, len(text))])
    keys = {m.entity for m in mentions}
    assert {"nike", "beaverton", "oregon", "converse", "jordan brand", "board of directors"} <= keys
    assert "the" not in keys and "in" not in keys
    assert any({t.head, t.tail} == {"beaverton", "oregon"} for t in triples)
    assert not any({t.head, t.tail} == {"beaverton", "converse"} for t in triples)  # different sentences


def test_normalise():
    assert normalise("The Federal Reserve's") == "federal reserve"
    assert normalise("  NASA ") == "nasa"
    assert normalise("NIKE, Inc.") == "nike"


def test_remove_document_is_an_exact_diff():
    kg = KnowledgeGraph()
    a = [("x", "X", "ENTITY", 1, "A"), ("y", "Y", "ENTITY", 1, "A")]
    b = [("x", "X", "ENTITY", 7, "B"), ("z", "Z", "ENTITY", 7, "B")]
    ra, rb = [("x", "y", "co-occurs", 1, "A")], [("x", "z", "co-occurs", 7, "B")]
    kg.add_rows(a, ra)
    kg.add_rows(b, rb)
    kg.remove_document("A", a, ra)
    assert set(kg.g.nodes) == {"x", "z"} and kg.chunk_ids("x") == [7]
    assert set(kg.g.edges) == {("x", "z")}
