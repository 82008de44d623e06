"""Retrieval metrics against values computed by hand, and the readers on tiny files in each original format."""

from __future__ import annotations

import json

import pytest

from ragqa.errors import InputError
from ragqa.eval import load_eval_set, summarise
from ragqa.eval.metrics import rank_paragraphs


def test_metrics_match_hand_computed_values():
    rankings = [
        ["a", "x", "b", "y", "z"],  # golds a (rank 1), b (rank 3)
        ["x", "y", "c"],  # gold c at rank 3, d never
        ["x"] * 0 + ["p", "q", "r", "s", "t", "u", "v", "w", "o", "n", "e"],  # gold e at rank 11
    ]
    golds = [{"a", "b"}, {"c", "d"}, {"e"}]
    m = summarise(rankings, golds)
    # recall@k averages the share of each question's gold paragraphs in its top k
    assert m["recall@1"] == pytest.approx((1 / 2 + 0 + 0) / 3, abs=1e-4)
    assert m["recall@2"] == pytest.approx((1 / 2 + 0 + 0) / 3, abs=1e-4)
    assert m["recall@5"] == pytest.approx((1 + 1 / 2 + 0) / 3, abs=1e-4)
    assert m["recall@10"] == pytest.approx((1 + 1 / 2 + 0) / 3, abs=1e-4)
    assert m["all_gold@10"] == pytest.approx(1 / 3, abs=1e-4)  # only the first has every gold in its top 10
    assert m["mrr"] == pytest.approx((1 / 1 + 1 / 3 + 1 / 11) / 3, abs=1e-4)
    assert m["n"] == 3


def test_a_paragraph_ranks_at_its_best_chunk():
    assert rank_paragraphs(["p2", "p1", "p2", "p3", "p1"]) == ["p2", "p1", "p3"]


def test_readers_take_each_original_format(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "Super_Bowl_50", "paragraphs": [
        {"context": "Denver won.", "qas": [{"id": "q1", "question": "Who won?", "answers": [{"text": "Denver"}]}]},
        {"context": "Carolina lost.", "qas": [{"id": "q2", "question": "Who lost?", "answers": [{"text": "Carolina"}]}]},
    ]}]}
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    s = load_eval_set(tmp_path / "squad.json")
    assert [p.title for p in s.paragraphs] == ["Super Bowl 50"] * 2 and s.language == "en"
    assert s.questions[1].gold == (s.paragraphs[1].pid,) and s.questions[1].answers == ("Carolina",)

    hotpot = [{"_id": "h1", "question": "Q?", "answer": "A", "type": "bridge",
               "supporting_facts": [["T1", 0], ["T2", 1], ["T1", 1]],
               "context": [["T1", ["One.", " Two."]], ["T2", ["Three."]], ["T3", ["Four."]]]}]
    (tmp_path / "hotpot.json").write_text(json.dumps(hotpot))
    h = load_eval_set(tmp_path / "hotpot.json")
    assert h.format == "hotpotqa" and h.questions[0].gold == ("T1", "T2") and len(h.paragraphs) == 3
    assert h.paragraphs[0].text == "T1\nOne. Two."

    musique = [{"id": "2hop__1_2", "question": "Q?", "answer": "A", "answer_aliases": ["a"],
                "question_decomposition": [], "paragraphs": [
                    {"idx": 0, "title": "X", "paragraph_text": "x text", "is_supporting": True},
                    {"idx": 1, "title": "Y", "paragraph_text": "y text", "is_supporting": False}]}]
    (tmp_path / "musique.json").write_text(json.dumps(musique))
    (tmp_path / "musique_corpus.json").write_text(json.dumps(
        [{"title": "Y", "text": "y text"}, {"title": "Z", "text": "z"}, {"title": "X", "text": "x text"}]))
    m = load_eval_set(tmp_path / "musique.json", limit=1)
    assert len(m.paragraphs) == 3 and m.questions[0].gold == (m.paragraphs[2].pid,)
    assert m.questions[0].answers == ("A", "a") and m.questions[0].kind == "2hop"

    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(InputError):
        load_eval_set(tmp_path / "other.json")


def test_a_held_out_sample_skips_the_tuning_questions_and_is_reproducible(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": f"Fact {i}.", "qas": [{"id": f"q{i}", "question": f"Q{i}?", "answers": [{"text": str(i)}]}]}
        for i in range(30)]}]}
    (tmp_path / "squad.json").write_text(json.dumps(squad))
    path = tmp_path / "squad.json"
    tuned = {q.qid for q in load_eval_set(path, limit=10).questions}
    held = load_eval_set(path, offset=10, sample=5, seed=3)
    ids = [q.qid for q in held.questions]
    assert len(ids) == 5 and not tuned & set(ids)
    assert ids == sorted(ids, key=lambda q: int(q[1:]))  # file order kept
    assert ids == [q.qid for q in load_eval_set(path, offset=10, sample=5, seed=3).questions]
    assert ids != [q.qid for q in load_eval_set(path, offset=10, sample=5, seed=4).questions]
    assert len(held.paragraphs) == 30  # the corpus stays whole


def test_a_question_with_no_text_is_skipped_with_a_note(tmp_path):
    data = {"version": "v1", "data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "a", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]},
        {"id": "b", "question": "  ", "answers": [{"text": "France", "answer_start": 12}]}]}]}]}
    path = tmp_path / "set.json"
    path.write_text(json.dumps(data))
    evalset = load_eval_set(path)
    assert [q.qid for q in evalset.questions] == ["a"]
    assert any("skipped 1 question" in n and "b" in n for n in evalset.notes)
