"""Answer-quality evaluation: SQuAD/CMRC metrics against hand-computed values, the resumable LLM cache, and
`ragqa eval --answers` end to end on a few real SQuAD questions with the embedded SmolLM2."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from conftest import CACHE, fixture, make_settings
from ragqa.chains import Prompts
from ragqa.chains.refine import refine_messages
from ragqa.chains.stuff import messages
from ragqa.eval.answers import (
    SHORT,
    SHORT_ZH,
    clean_prediction,
    exact_match,
    f1,
    normalize_answer,
    short_answer_prompts,
    short_instruction,
    summarise,
)
from ragqa.llm.cached import CachedLLM


def test_squad_normalisation_and_scores_by_hand():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert exact_match("Broncos", "Denver Broncos") == 0.0
    # pred {denver, broncos, won}, gold {denver, broncos}: P=2/3, R=1, F1=0.8
    assert f1("Denver Broncos won", "Denver Broncos") == pytest.approx(0.8)
    assert f1("Carolina", "Denver Broncos") == 0.0
    # Chinese by character, other runs whole (CMRC): gold 光荣和ω-force -> 光 荣 和 ωforce (4 tokens),
    # pred 光荣公司 -> 光 荣 公 司 (4); 2 in common: P = R = 1/2, F1 = 0.5
    gold = "光荣和ω-force"
    assert f1("光荣公司", gold) == pytest.approx(0.5)
    assert exact_match("光荣和ω-force。", gold) == 1.0


def test_predictions_lose_citation_markers_and_full_stops():
    assert clean_prediction("Denver Broncos [1].") == "Denver Broncos"
    assert clean_prediction("83,700 [2, 3]\nBecause ...") == "83,700"


def test_the_short_answer_instruction_follows_the_question_and_drops_the_marker_request():
    question = "Who won?"
    plain = messages(question, [], Prompts())
    short = messages(question, [], short_answer_prompts(Prompts()))
    assert "Cite the sources" in plain[0]["content"]  # a user's answer asks for [n] markers
    assert "Cite the sources" not in short[0]["content"] and SHORT not in short[0]["content"]
    assert short[1]["content"] == question + SHORT  # the question and the request, last and alone
    assert plain[1]["content"] == question


def test_refine_asks_for_a_short_answer_after_the_question_and_still_ends_by_keeping_the_old_one():
    # At the end of the refine prompt, "the shortest phrase from the context" overrode "return the original
    # answer": the model swapped a right answer for a phrase of the next chunk (docs/answers.md).
    for language, short in (("en", SHORT), ("zh", SHORT_ZH)):
        prompts = short_answer_prompts(Prompts(), language)
        [first] = refine_messages("Who won?", "[1] ctx one", None, prompts)
        [later] = refine_messages("Who won?", "[2] ctx two", "Denver", prompts)
        assert first["role"] == later["role"] == "user"
        assert "[1] ctx one" in first["content"] and first["content"].count(short) == 1
        assert first["content"].index("Who won?") < first["content"].index(short)
        text = later["content"]
        assert "Who won?" + short + "\n" in text and text.count(short) == 1
        assert text.index(short) < text.index("Denver") < text.index("[2] ctx two")
        assert text.rstrip().endswith("return the original answer.")  # the refine instruction comes last


def test_a_prompts_file_can_choose_langchains_chat_layout_for_refine():
    # The context as the system message, the answer so far as the assistant's own turn (measured, not the
    # default: docs/answers.md).
    chat = replace(Prompts(), refine_initial="Context:\n{context}\nAnswer any questions.",
                   refine="More context:\n{context}\nRefine the original answer, or return it.")
    for language, short in (("en", SHORT), ("zh", SHORT_ZH)):
        prompts = short_answer_prompts(chat, language)
        first = refine_messages("Who won?", "ctx", None, prompts)
        later = refine_messages("Who won?", "ctx2", "Denver", prompts)
        assert first == [{"role": "system", "content": "Context:\nctx\nAnswer any questions."},
                         {"role": "user", "content": "Who won?" + short}]
        assert later == [{"role": "user", "content": "Who won?" + short},
                         {"role": "assistant", "content": "Denver"},
                         {"role": "user", "content": "More context:\nctx2\nRefine the original answer, or return it."}]


def test_a_chinese_set_is_asked_in_chinese_for_the_contexts_own_words():
    question = "锣鼓经是什么？"
    short = short_answer_prompts(Prompts(), "zh")
    assert messages(question, [], short)[1]["content"] == question + SHORT_ZH
    assert SHORT not in short.stuff and SHORT.strip() not in short.combine and SHORT not in short.refine
    assert "copied exactly" in short.rerank_json and "shortest phrase" not in short.rerank_json
    assert "shortest phrase" in short_answer_prompts(Prompts(), "en").rerank_json
    assert short_instruction("zh") == SHORT_ZH and short_instruction("en") == SHORT


def test_summary_by_hand():
    rows = [{"em": 1.0, "f1": 1.0, "cited_gold": True, "abstained": False, "calls": 1, "tokens": 100, "seconds": 2},
            {"em": 0.0, "f1": 0.5, "cited_gold": False, "abstained": False, "calls": 3, "tokens": 300, "seconds": 4}]
    s = summarise(rows)
    assert (s["em"], s["f1"], s["cited_gold"], s["cited_gold_when_correct"]) == (50.0, 75.0, 50.0, 100.0)
    assert (s["llm_calls_per_q"], s["tokens_per_q"], s["s_per_q"], s["n"]) == (2.0, 200.0, 3.0, 2)
    replayed = summarise([rows[0], {**rows[1], "replayed": True}])
    assert replayed["s_per_q"] is None and replayed["replayed"] == 1  # a cached reply's seconds mean nothing
    assert "routes" not in s
    routed = [{**rows[0], "chain_used": "auto:map_rerank"}, {**rows[1], "chain_used": "auto:stuff"},
              {**rows[1], "chain_used": "auto:map_rerank"}]
    assert summarise(routed)["routes"] == {"auto:map_rerank": 2, "auto:stuff": 1}


def test_cached_llm_resumes_without_calling_the_model(llm, tmp_path):
    cached = CachedLLM(llm, tmp_path / "cache.sqlite")
    messages = [{"role": "user", "content": "Name a colour."}]
    first = cached.complete(messages, max_tokens=8)
    batch = cached.complete_many([messages, [{"role": "user", "content": "Name a fruit."}]], max_tokens=8)
    assert (cached.hits, cached.misses) == (1, 2) and _reply(batch[0]) == _reply(first)
    again = CachedLLM(llm, tmp_path / "cache.sqlite")  # a new run over the same file
    assert _reply(again.complete(messages, max_tokens=8)) == _reply(first) and (again.hits, again.misses) == (1, 0)
    # the KV-cache count belongs to the run that evaluated the prompt, not to the reply: a replay evaluated nothing
    assert again.complete(messages, max_tokens=8).cached_tokens == 0


def _reply(c):
    return c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason


@pytest.mark.slow
def test_ragqa_eval_answers_cli(tmp_path):
    full = json.loads(fixture("qa/squad_v1.1_dev_part_a_article1_6paragraphs.json").read_text())
    article = dict(full["data"][0], paragraphs=full["data"][0]["paragraphs"][:6])  # real text, a small corpus
    squad = tmp_path / "squad_small.json"
    squad.write_text(json.dumps({"version": full.get("version", "1.1"), "data": [article]}))
    out_json = tmp_path / "answers.json"
    env_cache = tmp_path / "cache"
    env_cache.mkdir()
    (env_cache / "models").symlink_to(CACHE / "models", target_is_directory=True)
    import os

    env = {**os.environ, "RAGQA_CACHE_DIR": str(env_cache), "RAGQA_LLM__MAX_TOKENS": "24"}
    cmd = [sys.executable, "-m", "ragqa", "eval", str(squad), "--answers", "--chain", "stuff,map_rerank",
           "--limit", "2", "-k", "2", "--json", str(out_json), "--plot", str(tmp_path / "answers.png"),
           "--rows", str(tmp_path / "rows.jsonl")]
    run = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    result = json.loads(out_json.read_text())
    assert set(result) == {"stuff", "map_rerank", "_run"}
    for chain in ("stuff", "map_rerank"):
        m = result[chain]
        assert m["n"] == 2 and 0 <= m["em"] <= m["f1"] + 1e-9 <= 100 and m["llm_calls_per_q"] >= 1
    assert result["map_rerank"]["llm_calls_per_q"] == 2.0  # one per chunk
    assert result["_run"]["model"] == "smollm2-135m" and (tmp_path / "answers.png").stat().st_size > 1000
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert sorted(r["chain"] for r in rows) == ["map_rerank", "map_rerank", "stuff", "stuff"]
    first_two = [q for p in article["paragraphs"] for q in p["qas"]][:2]
    for chain in ("stuff", "map_rerank"):  # the rows are what the summary averaged
        mine = [r for r in rows if r["chain"] == chain]
        assert [r["question"] for r in mine] == [q["question"] for q in first_two]
        assert round(100 * sum(r["f1"] for r in mine) / 2, 1) == result[chain]["f1"]
    rerun = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0 and json.loads(out_json.read_text())["_run"]["cache"]["misses"] == 0


@pytest.mark.slow
def test_gold_retrieval_reads_exactly_the_questions_gold_paragraphs(tmp_path):
    """`--retrieval gold`, the chains' reading ceiling: on two-paragraph HotpotQA questions each chain reads (and
    stuff cites) every gold paragraph and nothing else, whatever dense retrieval would have found."""
    from ragqa.eval.answers import evaluate_answers
    from ragqa.eval.datasets import load_eval_set

    sample = json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json").read_text())[:2]
    path = tmp_path / "hotpot2.json"
    path.write_text(json.dumps(sample))
    gold = {q.qid: set(q.gold) for q in load_eval_set(path).questions}
    assert all(len(g) == 2 for g in gold.values())  # a bridge/comparison pair: two paragraphs each
    result = evaluate_answers(path, make_settings(tmp_path, llm={"max_tokens": 16}), chains=["stuff"],
                              retrieval="gold", k=1, keep=True)
    assert result["retrieval"] == "gold" and result["results"]["stuff"]["cited_gold"] == 100.0
    rows = result["answers"]["stuff"]
    assert len(rows) == 2 and all(set(r["cited"]) == gold[r["qid"]] for r in rows)  # both, though k=1
