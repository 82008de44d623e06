"""Search filters on real passages and real PDFs: a filtered search finds what the unfiltered top k misses, ranks
as a collection holding only the allowed documents would, in every mode and through every vector index kind;
pages, file globs, ingest metadata and ingestion time; malformed filters are clear errors."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import fixture, make_settings
from ragqa.collection import Collection
from ragqa.errors import InputError
from ragqa.filters import Filter
from ragqa.index.vectors import FaissIndex
from ragqa.types import Text

MODES = ("dense", "lexical", "hybrid", "graph", "auto")
BRIDGE = "5a8c68c4554299585d9e3689"  # Ayesha Quraishi -> Botswana (HotpotQA train)


def _paragraphs() -> dict[str, str]:
    questions = json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json").read_text())
    return {title: "".join(sentences).strip() for q in questions for title, sentences in q["context"]}


@pytest.fixture(scope="module")
def hotpot(tmp_path_factory):
    """Every paragraph of the fixture's questions, one document each, tagged by the first letter of its title."""
    paragraphs = _paragraphs()
    coll = Collection.open("hotpot", make_settings(tmp_path_factory.mktemp("filters")), create=True)
    report = coll.ingest_texts([Text(t, f"{t}\n{b}", meta={"initial": t[0].upper()}) for t, b in paragraphs.items()])
    assert {f.status for f in report.files} == {"ok"}
    questions = {q["_id"]: q for q in json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json")
                                                 .read_text())}
    return coll, questions


def _doc_id(coll: Collection, filename: str) -> str:
    return next(d["doc_id"] for d in coll.documents() if d["filename"] == filename)


def test_a_document_filter_finds_the_chunk_the_unfiltered_top_k_misses(hotpot):
    coll, questions = hotpot
    question = questions[BRIDGE]["question"]
    assert "Botswana" not in [h.filename for h in coll.search(question, k=2, mode="dense")]
    within = Filter(documents=(_doc_id(coll, "Botswana"),))
    for mode in MODES:
        hits = coll.search(question, k=2, mode=mode, within=within)
        assert hits and {h.filename for h in hits} == {"Botswana"}, mode


def test_every_mode_returns_only_allowed_chunks(hotpot):
    coll, questions = hotpot
    within = Filter(meta=(("initial", "B"),))
    allowed = {d["filename"] for d in coll.documents() if d["meta"]["initial"] == "B"}
    assert 1 < len(allowed) < len(coll.documents()) / 2
    for q in list(questions.values())[:4]:
        for mode in MODES:
            hits = coll.search(q["question"], k=5, mode=mode, within=within)
            assert {h.filename for h in hits} <= allowed, (mode, q["question"])
            assert hits or mode == "lexical"  # BM25 finds nothing where no allowed chunk shares a word


def test_a_filtered_search_ranks_as_a_collection_of_only_those_documents(hotpot, tmp_path):
    coll, questions = hotpot
    paragraphs = _paragraphs()
    kept = sorted(t for t in paragraphs if t[0].upper() in "ABC")
    alone = Collection.open("alone", make_settings(tmp_path), create=True)
    alone.ingest_texts([Text(t, f"{t}\n{paragraphs[t]}", meta={"initial": t[0].upper()}) for t in kept])
    within = Filter(documents=tuple(_doc_id(coll, t) for t in kept))
    for q in questions.values():
        filtered = coll.search(q["question"], k=5, mode="dense", within=within)
        only = alone.search(q["question"], k=5, mode="dense")
        assert [h.text for h in filtered] == [h.text for h in only]
        # the same texts embedded in other batches (other padding) differ in the fourth decimal, no more
        assert np.allclose([h.score for h in filtered], [h.score for h in only], atol=2e-3)
        # BM25 keeps the whole collection's statistics, so its scores differ; what it may return does not
        assert {h.filename for h in coll.search(q["question"], k=5, mode="lexical", within=within)} <= set(kept)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_each_vector_index_searches_only_the_allowed_ids(hotpot, kind):
    coll, _ = hotpot
    ids, vectors = next(coll.store.docs.iter_vectors(batch=100_000))
    index = FaissIndex(vectors.shape[1], kind, train=vectors if kind == "ivf" else None)
    index.add(ids, vectors)
    allowed = np.sort(ids[::3])
    queries = vectors[1::7]
    scores, got = index.search(queries, 5, allowed=allowed)
    exact = vectors[np.isin(ids, allowed)] @ queries.T
    found = []
    for row in range(len(queries)):
        assert set(got[row][got[row] >= 0]) <= set(allowed.tolist())
        best = np.sort(exact[:, row])[::-1][:5]
        assert np.isclose(scores[row][0], best[0], atol=1e-5)  # the query's own chunk, when allowed, or the best
        found.append(np.mean([np.isclose(scores[row], b, atol=1e-5).any() for b in best]))
    # flat is exact; HNSW over 120 points too; IVF probes some of its lists (43 lists for 120 points here)
    assert np.mean(found) == 1.0 if kind != "ivf" else np.mean(found) >= 0.8


def test_pages_files_metadata_and_ingestion_time(small_pdfs, tmp_path):
    coll = Collection.open("pdfs", make_settings(tmp_path / "home"), create=True)
    first = [p for p in small_pdfs.iterdir() if "4-pages" not in p.name]
    later = [p for p in small_pdfs.iterdir() if "4-pages" in p.name]
    assert coll.ingest(first, meta={"team": "a"}).failed == []
    between = time.time()
    time.sleep(0.01)
    assert coll.ingest(later, meta={"team": "b"}).failed == []
    four = later[0].name

    hits = coll.search("information text", k=10, mode="lexical", within=Filter(files=("*4-pages*",), pages=(2, 3)))
    assert hits and all(h.filename == four and h.page_end >= 2 and h.page_start <= 3 for h in hits)
    whole = coll.search("information text", k=10, mode="lexical", within=Filter(files=("*4-pages*",)))
    assert any(h.page_end < 2 or h.page_start > 3 for h in whole)  # the page range did leave chunks out
    assert {h.filename for h in coll.search("text", k=10, mode="hybrid", within=Filter(meta=(("team", "b"),)))} \
        == {four}
    assert {h.filename for h in coll.search("text", k=10, mode="hybrid", within=Filter(added_after=between))} \
        == {four}
    assert four not in {h.filename for h in coll.search("text", k=10, within=Filter(added_before=between))}
    assert coll.search("text", k=10, within=Filter(meta=(("team", "nobody"),))) == []
    assert coll.search("text", k=10, within=Filter(pages=(3, 2))) == []
    docs = {d["filename"]: d["meta"] for d in coll.documents()}
    assert docs[four]["team"] == "b" and all(docs[p.name]["team"] == "a" for p in first)


def test_malformed_filters_are_clear_errors():
    for bad in ("0", "0-3", "three", "3-x"):
        with pytest.raises(InputError, match="pages"):
            Filter.from_options(pages=bad)
    assert Filter.from_options(pages="7-3").pages == (7, 3)  # runs backwards: matches nothing (below)
    with pytest.raises(InputError, match="key=value"):
        Filter.from_options(meta=["year"])
    with pytest.raises(InputError, match="plain name"):
        Filter.from_options(meta={"a'b": "1"})
    with pytest.raises(InputError, match="not a time"):
        Filter.from_options(added_after="last tuesday")
    f = Filter.from_options(pages="3-", meta=["year=2023"], added_after="2026-12-01", files=["*.pdf"])
    assert f.pages == (3, None) and f.meta == (("year", "2023"),) and f.files == ("*.pdf",)
    assert f.added_after == Filter.from_options(added_after="2026-12-01T00:00:00+00:00").added_after
    assert f.describe() == {"files": ["*.pdf"], "pages": "3-", "added_after": f.added_after, "meta": {"year": "2023"}}
    assert not Filter.from_options(documents=[" "], files=[])


def test_an_answer_within_a_filter_says_so_and_an_empty_scope_is_not_found(hotpot):
    from ragqa.errors import NotFound

    coll, questions = hotpot
    with pytest.raises(NotFound, match="within the filter"):
        coll.ask(questions[BRIDGE]["question"], within=Filter(files=("no-such-file*",)))
