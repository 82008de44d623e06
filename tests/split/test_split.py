"""Splitting with the embedder's tokenizer: sizes, offsets, page spans, Chinese punctuation."""

from __future__ import annotations

import bisect

from ragqa.split import Splitter, joined_text
from ragqa.types import Document, Page


def _doc(pages: list[str]) -> Document:
    return Document("d" * 64, "x.pdf", "/x.pdf", tuple(Page(i + 1, t) for i, t in enumerate(pages)))


def test_chunks_fit_the_token_budget_and_offsets_are_exact(embedder):
    text = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(400))
    doc = _doc([text[:3000], "", text[3000:9000], text[9000:]])
    chunks = Splitter(embedder.tokenizer(), 64, 8).split(doc)
    joined, starts, numbers = joined_text(doc)
    assert len(chunks) > 10
    for c in chunks:
        assert embedder.count_tokens(c.text) <= 64
        assert joined[c.char_start:c.char_end] == c.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    # page 2 is empty: no chunk claims it alone, and spans never go backwards
    assert all(c.page_start in (1, 3, 4) for c in chunks)
    assert all(a.page_start <= b.page_start for a, b in zip(chunks, chunks[1:]))
    # each chunk names exactly the pages its characters come from (its first and last character's pages); the
    # splitter cuts at page breaks here, and test_page_span_of_a_chunk_crossing_a_page_break covers a crossing
    def page_of(offset: int) -> int:
        return numbers[bisect.bisect_right(starts, offset) - 1]

    assert [(c.page_start, c.page_end) for c in chunks] == [(page_of(c.char_start), page_of(c.char_end - 1))
                                                            for c in chunks]


def test_page_span_of_a_chunk_crossing_a_page_break(embedder):
    doc = _doc(["alpha beta gamma", "delta epsilon zeta"])
    (chunk,) = Splitter(embedder.tokenizer(), 64, 0).split(doc)
    assert (chunk.page_start, chunk.page_end) == (1, 2)


def test_chinese_is_cut_on_chinese_sentence_ends(embedder):
    sentence = "曹操率领大军南下，孙权与刘备联合抗曹。"
    doc = _doc([sentence * 60])
    chunks = Splitter(embedder.tokenizer(), 48, 0).split(doc)
    assert len(chunks) > 3
    assert all(c.text.endswith("。") for c in chunks[:-1])
    assert all(embedder.count_tokens(c.text) <= 48 for c in chunks)
