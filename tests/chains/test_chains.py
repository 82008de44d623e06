"""The four chains with the real embedded model over a real 10-K: sources, budgets, recursion, parsing."""

from __future__ import annotations

import pytest

from ragqa.chains import REVISED, Budget, Prompts, run_chain
from ragqa.chains.auto import is_factoid
from ragqa.chains.base import quote_sources
from ragqa.chains.map_rerank import (
    NOT_FOUND,
    agreement,
    contenders,
    drop_echo,
    evidence,
    judge_tie,
    parse,
    parse_choice,
    quote,
    repeats_question,
    same_answer,
    voted,
)
from ragqa.chains.stuff import holding, read_structured
from ragqa.errors import BudgetError
from ragqa.load import load
from ragqa.types import Hit

QUESTION = "How many employees did NIKE have as of May 31, 2023?"
REPLY = 96  # tokens reserved per reply: enough to check structure, short enough to keep the suite quick


@pytest.fixture(scope="module")
def hits(nke_collection):
    return nke_collection.search(QUESTION, k=4)


@pytest.fixture(scope="module")
def pages(nke_collection):
    from conftest import NKE

    return {p.number: p.text for p in load(NKE).pages}


def _check(answer, hits, llm, pages):
    assert answer.answer.strip()
    assert answer.sources, "an answer without sources is a bug"
    by_id = {h.chunk_id: h for h in hits}
    for s in answer.sources:
        assert s.chunk_id in by_id and s.document == "nke-10k-2023.pdf"
        assert s.page == by_id[s.chunk_id].page_start and s.page in pages
        opening = " ".join(s.snippet.rstrip("…").split()[:6])
        assert opening in " ".join(pages[s.page].split()), (s.page, opening)  # the cited page holds the text
    totals = answer.trace.totals()
    assert totals["calls"] >= 1 and totals["prompt_tokens"] > 0
    for step in answer.trace.steps:
        if step.calls:
            assert step.max_prompt_tokens <= llm.context_window


@pytest.mark.parametrize("chain", ["stuff", "map_reduce", "refine", "map_rerank"])
def test_every_chain_answers_with_sources_on_the_right_pages(chain, hits, llm, pages):
    answer = run_chain(chain, QUESTION, hits, llm, budget=Budget.for_llm(llm, REPLY))
    _check(answer, hits, llm, pages)
    if chain == "stuff":
        assert len(answer.sources) == len(hits) and answer.trace.totals()["calls"] == 1
    if chain == "map_reduce":
        assert answer.trace.steps[0].name == "map" and answer.trace.steps[0].calls == len(hits)
    if chain == "refine":  # one step per chunk, in retrieval order
        assert answer.trace.totals()["calls"] == len(hits)
        assert [s.detail["chunk_id"] for s in answer.trace.steps] == [h.chunk_id for h in hits]
        assert [s.chunk_id for s in answer.sources] == [h.chunk_id for h in hits]
    if chain == "map_rerank":  # the winning chunk, plus any other chunk that found the same answer
        assert 1 <= len(answer.sources) <= len(hits)


def test_no_chain_overflows_a_small_window(hits, small_llm, pages):
    many = hits * 2  # 8 chunks of ~230 tokens: a naive concatenation is ~1,900 tokens for a 1,024 window
    naive = sum(small_llm.count_tokens(h.text) for h in many)
    assert naive > small_llm.context_window
    budget = Budget.for_llm(small_llm, max_tokens=REPLY)
    for chain in ("stuff", "map_reduce", "refine", "map_rerank"):
        answer = run_chain(chain, QUESTION, many, small_llm, budget=budget)
        for step in answer.trace.steps:
            if step.calls:
                assert step.max_prompt_tokens + budget.max_tokens <= small_llm.context_window, (chain, step)
        assert answer.sources
    stuffed = run_chain("stuff", QUESTION, many, small_llm, budget=budget)
    assert stuffed.trace.steps[0].detail["dropped"] > 0
    assert [s.chunk_id for s in stuffed.sources] == [h.chunk_id for h in many[: len(stuffed.sources)]]


def test_stuff_says_clearly_when_not_even_one_chunk_fits(hits, small_llm):
    with pytest.raises(BudgetError, match="not even the best chunk fits"):
        run_chain("stuff", QUESTION, hits, small_llm, budget=Budget(context_window=300, max_tokens=128))


@pytest.mark.parametrize("question,factoid", [
    ("Who won Super Bowl 50?", True), ("How many employees did NIKE have?", True),
    ("Why did the Broncos win?", False), ("Compare the two teams.", False), ("Was it Denver or Carolina?", False), ("What do E. B. White and Dan Masterson have in common?", False),
    ("锣鼓经是什么？", True), ("他在哪一年出生？", True),
    ("苏博为什么改名？", False), ("铁路沿线设有哪些站点？", False), ("第三代蓝甲虫是怎么产生的？", False),
])
def test_auto_knows_a_one_fact_question(question, factoid):
    assert is_factoid(question) is factoid


def test_auto_answers_in_one_call_and_checks_a_factoid_against_the_chunks(hits, llm, small_llm):
    budget = Budget.for_llm(llm, REPLY)
    broad = "Describe NIKE's human capital programs."  # not one fact: plain stuff, or map_reduce when it overflows
    plain = run_chain("auto", broad, hits[:2], llm, budget=budget)
    assert plain.chain == "auto:stuff" and [(s.name, s.calls) for s in plain.trace.steps] == [("stuff", 1)]
    assert "json" not in plain.trace.steps[0].detail
    assert run_chain("auto", broad, hits * 2, small_llm, budget=Budget.for_llm(small_llm, REPLY)).chain == \
        "auto:map_reduce"
    factoid = run_chain("auto", QUESTION, hits[:3], llm, budget=budget)  # one fact: stuff's JSON reading first
    first = factoid.trace.steps[0]
    assert (first.name, first.calls) == ("stuff", 1) and first.detail["json"] is True
    if factoid.chain == "auto:stuff":  # the draft's answer stands in a chunk: one call, that chunk cited
        assert factoid.detail["grounded"] and len(factoid.trace.steps) == 1
        held = {h.chunk_id: h for h in hits[:3] if h.chunk_id in first.detail["held_by"]}
        assert held and {s.chunk_id for s in factoid.sources} <= set(held)
    else:  # not found, or written from outside the chunks: each chunk answers alone
        assert factoid.chain == "auto:stuff>map_rerank"
        assert [(s.name, s.calls) for s in factoid.trace.steps[:2]] == [("stuff", 1), ("rerank", 3)]


def test_auto_escalates_a_draft_no_chunk_holds_and_a_stream_says_so(hits, llm):
    """The draft is steered outside the chunks (a word in none of them): the check catches it, each chunk answers
    alone, and a stream shows the draft, then the answer that replaced it."""
    invented = "Zyxqvort"
    assert not any(invented.lower() in h.text.lower() for h in hits)
    prompts = Prompts(stuff_json=f'{{question}}\nReply with JSON: {{{{"found": true, "answer": "{invented}"}}}}. '
                                 f'Copy that JSON exactly.')
    streamed: list[str] = []
    answer = run_chain("auto", QUESTION, hits[:3], llm, budget=Budget.for_llm(llm, REPLY), prompts=prompts,
                       on_token=streamed.append)
    draft = answer.trace.steps[0].detail
    assert draft["found"] and draft["answer"] and not draft["held_by"], draft  # no chunk holds what it wrote
    assert answer.chain == "auto:stuff>map_rerank"
    assert [(s.name, s.calls) for s in answer.trace.steps[:2]] == [("stuff", 1), ("rerank", 3)]
    assert answer.trace.steps[1].detail["vote"]["answer"] == draft["answer"]  # the draft votes, nothing more
    text = "".join(streamed)
    assert text.startswith(draft["answer"])  # the JSON's answer field, not its braces
    if answer.answer != draft["answer"]:
        assert text == draft["answer"] + REVISED + answer.answer


def test_structured_replies_and_the_chunks_that_hold_an_answer(hits):
    assert read_structured('{"found": true, "answer": "83,700"}') == ("83,700", True)
    assert read_structured('{"found": false, "answer": "83,700"}') == ("83,700", False)
    assert read_structured('{"found": true, "answer": "not mentioned in the context"}')[1] is False
    assert read_structured("About 83,700 employees.") == ("About 83,700 employees.", True)  # not JSON: plain
    assert read_structured('{"found": true, "answer": "83,7')  == ("83,7", True)  # cut: repaired, checked later
    text = hits[0].text
    words = text.split()[:3]
    assert holding(" ".join(words), hits) and hits[0] in holding(" ".join(words), hits)
    assert holding("Zyxqvort", hits) == [] and holding("", hits) == []


def test_map_reduce_collapses_recursively_with_provenance(hits, small_llm):
    budget = Budget(context_window=small_llm.context_window, max_tokens=200)
    prompts = Prompts(map="Repeat the following text exactly, word for word:\n{context}\n(Question: {question})")
    answer = run_chain("map_reduce", QUESTION, hits * 2, small_llm, budget=budget, prompts=prompts)
    names = [s.name for s in answer.trace.steps]
    assert names[0] == "map" and names[-1] == "combine" and any(n.startswith("collapse_") for n in names)
    assert {s.chunk_id for s in answer.sources} <= {h.chunk_id for h in hits}
    assert len(answer.sources) >= 2  # provenance survived the collapse as a list


class _NoJson:
    """The real model, with JSON mode reported off, to exercise the text parser path."""

    def __init__(self, llm):
        self._llm = llm

    supports_json = False

    def __getattr__(self, name):
        return getattr(self._llm, name)


def test_map_rerank_parse_failures_score_zero_and_abstain(hits, llm):
    prompts = Prompts(rerank="Say only the word banana. Context: {context} Question: {question}")
    answer = run_chain("map_rerank", QUESTION, hits, _NoJson(llm), prompts=prompts, budget=Budget.for_llm(llm, 32))
    detail = answer.trace.steps[0].detail
    assert detail["json"] is False
    assert answer.abstained and answer.answer == NOT_FOUND
    assert answer.sources  # still says which chunk it looked at


@pytest.mark.parametrize("text,expected", [
    ('{"answer": "83,700", "score": 90}', ("83,700", 90, True)),
    ('```json\n{"answer": "Beaverton", "score": 150}\n```', ("Beaverton", 100, True)),
    ("Helpful Answer: first line\nsecond line\nScore: 75", ("first line\nsecond line", 75, True)),
    ("The answer is X.\nScore: -5 points", ("The answer is X.", 0, True)),
    ("no score at all", ("no score at all", 0, False)),
    ("", ("", 0, False)),
    ('{"answer": "x", "score": "high"}', ('{"answer": "x", "score": "high"}', 0, False)),
    # damaged JSON is repaired when the score, its last field, was written ...
    ("{'answer': 'Paris', 'score': 70}", ("Paris", 70, True)),
    ('{"found": true, "answer": "Paris", "score": 80,', ("Paris", 80, True)),
    # ... and not when the reply was cut inside its answer: "Denver Bron" is not an answer
    ('{"found": true, "answer": "Denver Bron', ('{"found": true, "answer": "Denver Bron', 0, False)),
])
def test_map_rerank_parser(text, expected):
    assert parse(text) == expected


def test_map_rerank_ties_go_to_the_better_retrieved_chunk(hits, llm):
    """The winner has the best evidence (the self-score weighed by support), then the best self-score, then the
    better retrieval rank. Checked against the trace of what SmolLM2 replied: its replies to this prompt are not
    the same on every CPU (llama.cpp builds for the host's instruction set), so a fixed expectation would test
    the host, not the rule."""
    assert evidence(50, True, 1.0, rank=0) > evidence(50, True, 1.0, rank=1)  # equal replies: rank decides
    prompts = Prompts(rerank_json='Reply with exactly {{"answer": "same", "score": 50}}. {context} {question}')
    answer = run_chain("map_rerank", QUESTION, hits, llm, prompts=prompts, budget=Budget.for_llm(llm, 48))
    detail = answer.trace.steps[0].detail
    keys = [(ev, score, -rank) for rank, (ev, score) in enumerate(zip(detail["evidence"], detail["scores"]))]
    assert answer.sources[0].chunk_id == hits[keys.index(max(keys))].chunk_id


def test_map_rerank_ranks_on_evidence_not_self_score():
    """The measured failure: 100/100 for unrelated paragraphs. A supported answer beats an unsupported one
    with a higher self-score; a 'not mentioned' verdict or found=false scores nothing."""
    from ragqa.chains.map_rerank import claims_found, support

    chunk = "NIKE's world headquarters is in Beaverton, Oregon, and employed about 83,700 people."
    assert support("Beaverton, Oregon", chunk) == 1.0
    assert support("Portland", chunk) == 0.0
    assert support("北京大学", "他毕业于北京大学。") == 1.0  # CJK by character
    # a digit run never swallows the Chinese after it ("1987年出生于…" is not one word)
    assert support("10号", "他身披10号球衣。") == 1.0
    assert support("足球运动员", "张世昌（1989年2月4日－），中国足球运动员。") == 1.0
    assert not claims_found('{"found": false, "answer": "Beaverton", "score": 90}', "Beaverton")
    assert not claims_found("", "The context does not mention the headquarters.")
    assert not claims_found("", "该文未提及此事")
    assert claims_found('{"found": true, "answer": "Beaverton", "score": 90}', "Beaverton")
    grounded = evidence(60, True, support("Beaverton", chunk), rank=2)
    invented = evidence(100, True, support("Portland", chunk), rank=0)
    assert grounded > invented
    assert evidence(100, False, 1.0, rank=0) == 0.0


def test_map_rerank_quotes_its_source_and_knows_agreeing_answers():
    assert quote("24-10", "Denver won 24\u201310 over Carolina.") == "24\u201310"  # the source's en dash
    assert quote("linebacker", "the Pro Bowl Linebacker Von Miller") == "Linebacker"
    assert quote("Santa Clara", "in San Francisco") == "Santa Clara"  # not in the chunk: left alone
    assert quote("Yes", "she closed her eyes") == "Yes"  # a case-only match must stand as whole words
    assert quote("golden-era", "Golden\u2013era, then golden\u2013era") == "golden\u2013era"  # same case first
    assert same_answer("Von Miller.", "von  miller") and not same_answer("Von Miller", "Miller")
    assert not same_answer("", "")


def test_a_figure_is_quoted_in_the_words_its_source_uses():
    assert quote("7", "Newton was sacked seven times in 2007.") == "seven"  # "7" in "2007" is not the figure
    assert quote("10", "Ten Panthers players were chosen.") == "Ten"
    assert quote("3rd", "the third most watched show") == "third"
    assert quote("40", "forty-two yards, forty in the air") == "forty"
    assert quote("40", "forty-two yards") == "40"  # "forty-two" is not 40
    assert quote("7", "Newton was sacked 7 times, seven in all.") == "7"  # the figure is there: kept
    assert quote("7", "He was sacked 7. Then seven more.") == "7"  # a figure ending a sentence stands alone
    assert quote("8", "Denver had eighty yards.") == "8"  # "eight" must stand as a whole word
    assert quote("25", "twenty-five") == "25"  # only what one word spells
    hits = [_hit(1, "Released in 1997."), _hit(2, "He made five solo tackles.")]
    assert quote_sources("5", hits) == "five"
    assert quote_sources("97", [_hit(3, "the 97 yards")]) == "97"


def _hit(chunk_id: int, text: str) -> Hit:
    return Hit(chunk_id, f"d{chunk_id}", f"doc{chunk_id}.txt", 1, 1, text, 1.0)


def test_a_short_answer_quotes_the_first_source_that_holds_it():
    hits = [_hit(1, "The Broncos went 12\u20134 in the regular season."), _hit(2, "They won 24\u201310.")]
    assert quote_sources("24-10", hits) == "24\u201310"
    assert quote_sources("12-4", hits) == "12\u20134"
    assert quote_sources("24-10", [_hit(3, "24-10 on the board"), *hits]) == "24-10"  # verbatim somewhere: kept
    assert quote_sources("The Panthers", [_hit(4, "Denver beat the Panthers.")]) == "The Panthers"  # case alone
    long_answer = "The Broncos won 24-10 [2]."  # a sentence never matches a chunk: left as written
    assert quote_sources(long_answer, hits) == long_answer
    assert quote_sources("", hits) == ""


def test_a_chinese_figure_keeps_the_unit_its_source_writes_after_it():
    hits = [_hit(1, "赵鹏在2009年入选国家队，身披10号球衣。"), _hit(2, "大莱龙铁路一共投资11.42亿元，全长364.6公里。")]
    assert quote_sources("2009", hits) == "2009年"
    assert quote_sources("10", hits) == "10号"
    assert quote_sources("11.42", hits) == "11.42亿元"  # a magnitude and its unit
    assert quote_sources("364.6", hits) == "364.6公里"
    assert quote_sources("2009年", hits) == "2009年"  # already whole
    assert quote_sources("9", hits) == "9"  # "9" stands only inside "2009": no unit borrowed
    assert quote_sources("42", hits) == "42"  # nor inside "11.42"
    assert quote_sources("364", hits) == "364"  # nor before ".6"
    assert quote_sources("50", [_hit(3, "It rose 50% in 2009年.")]) == "50"  # English units are left alone
    assert quote_sources("7", [_hit(4, "共有7座桥"), _hit(5, "7人")]) == "7座"  # the first chunk holding it decides


class ScriptedLLM:
    """Replies with one fixed text. The real models cannot be made to re-type a dash on demand, so this stands in
    for one to check the wiring only: that every chain hands back its final answer in the source's spelling."""

    name = "scripted"
    context_window = 4096
    supports_json = False

    def __init__(self, reply: str):
        self.reply = reply

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_messages(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def complete(self, messages, *, max_tokens, temperature=0.0, stop=None, json_schema=None):
        from ragqa.llm.base import Completion
        return Completion(self.reply, self.count_messages(messages), 2)

    def complete_many(self, batch, **kw):
        return [self.complete(m, **kw) for m in batch]

    def stream(self, messages, **kw):
        yield self.reply


@pytest.mark.parametrize("chain,reply", [("stuff", "24-10"), ("map_reduce", "24-10"), ("refine", "24-10"),
                                         ("map_rerank", '{"found": true, "answer": "24-10", "score": 100}')])
def test_every_chain_answers_in_its_sources_spelling(chain, reply):
    hits = [_hit(1, "Denver beat Carolina 24\u201310 in Super Bowl 50."), _hit(2, "Kickoff was at 3:30 p.m.")]
    answer = run_chain(chain, "What was the final score?", hits, ScriptedLLM(reply))
    assert answer.answer == "24\u201310"


class ChunkScriptedLLM(ScriptedLLM):
    """Replies by prompt: `stuff` to the one prompt holding every chunk (a system message), else the reply of the
    first chunk marker found in a per-chunk prompt. Stands in for a model to check the wiring of auto's vote:
    the real models cannot be made to disagree across chunks on demand."""

    supports_json = True  # stuff's JSON reading of a factoid, map_rerank's JSON replies

    def __init__(self, stuff: str, per_chunk: dict[str, str]):
        super().__init__(stuff)
        self.per_chunk = per_chunk
        self.prompts: list[str] = []

    def complete(self, messages, *, max_tokens, temperature=0.0, stop=None, json_schema=None):
        from ragqa.llm.base import Completion
        text = messages[-1]["content"]
        self.prompts.append("stuff" if messages[0]["role"] == "system" else "rerank")
        reply = self.reply if messages[0]["role"] == "system" else next(
            r for marker, r in self.per_chunk.items() if marker in text)
        return Completion(reply, self.count_messages(messages), 2)


@pytest.mark.parametrize("a,b,level", [
    ("Von Miller.", "von  miller", 3), ("8", "eight", 2), ("twice", "2", 2), ("Patriots", "New England Patriots", 1),
    ("New England Patriots", "Patriots", 1), ("巴西", "葡萄牙、塞尔维亚和巴西", 1), ("Miller", "Millerton", 0),
    ("Denver", "Carolina", 0), ("", "Denver", 0), ("eight", "eighteen", 0),
])
def test_agreement_between_two_readings(a, b, level):
    assert agreement(a, b) == level


def test_the_vote_picks_the_strongest_agreement_among_found_answers():
    def row(rank, answer, ev, found=True, score=100):
        return {"rank": rank, "answer": answer, "evidence": ev, "found": found, "score": score}

    scored = [row(0, "Denver Broncos", 1.0), row(1, "Patriots", 1.0), row(2, "New England Patriots", 0.8)]
    assert voted(scored, "New England Patriots", 30)["rank"] == 2  # the same words beat a containment
    assert voted(scored, "the Patriots", 30)["rank"] == 1  # both contain it: then evidence decides
    assert voted(scored, "Carolina Panthers", 30) is None  # no candidate agrees: the evidence order stands
    assert voted([row(0, "eight", 1.0), row(1, "8", 0.2)], "8", 30)["rank"] == 0  # below the line: not a candidate
    assert voted([row(0, "Denver", 1.0, found=False)], "Denver", 30) is None  # a "not found" never wins


def test_auto_pays_for_each_chunk_only_when_its_draft_fails_the_check():
    hits = [_hit(1, "The Pittsburgh Steelers won the AFC North."), _hit(2, "The Denver Broncos won the AFC title."),
            _hit(3, "Kickoff was at 3:30 p.m.")]
    replies = {"Steelers": '{"found": true, "answer": "Pittsburgh Steelers", "score": 100}',
               "Broncos": '{"found": true, "answer": "Denver Broncos", "score": 100}',
               "Kickoff": '{"found": false, "answer": "", "score": 0}'}
    question = "Which team won the AFC title?"
    alone = run_chain("map_rerank", question, hits, ChunkScriptedLLM("", replies))
    assert alone.answer == "Pittsburgh Steelers"  # equal evidence: the better-retrieved chunk

    def auto(draft: str, per_chunk: dict[str, str] = replies):
        llm = ChunkScriptedLLM(draft, per_chunk)
        return run_chain("auto", question, hits, llm), llm.prompts

    grounded, prompts = auto('{"found": true, "answer": "Denver Broncos"}')  # one chunk holds it: one call
    assert (grounded.chain, grounded.answer, prompts) == ("auto:stuff", "Denver Broncos", ["stuff"])
    assert [s.chunk_id for s in grounded.sources] == [2]  # the chunk that holds the answer, not all three
    # "team" stands in no chunk: each chunk answers alone, and the draft votes for the chunk answer it contains
    voted_for, prompts = auto('{"found": true, "answer": "the Denver Broncos team"}')
    assert voted_for.chain == "auto:stuff>map_rerank" and voted_for.answer == "Denver Broncos"
    assert prompts == ["stuff", "rerank", "rerank", "rerank"] and [s.chunk_id for s in voted_for.sources] == [2]
    assert voted_for.trace.steps[1].detail["vote"] == {"asked": True, "answer": "the Denver Broncos team",
                                                       "agreed": True, "changed": True}
    not_found, prompts = auto('{"found": false, "answer": ""}')  # the draft's verdict: each chunk alone, no vote
    assert not_found.answer == "Pittsburgh Steelers" and len(prompts) == 4
    assert "vote" not in not_found.trace.steps[1].detail
    nobody = {marker: '{"found": false, "answer": "", "score": 0}' for marker in replies}
    stands, prompts = auto('{"found": true, "answer": "Denver team"}', nobody)  # no chunk alone found any
    assert stands.chain == "auto:stuff>map_rerank" and stands.answer == "Denver team" and len(prompts) == 4
    assert not stands.detail["grounded"] and stands.trace.totals()["calls"] == 4


@pytest.mark.parametrize("answer,question,expected", [
    ("锣鼓经是大陆传统器乐的打击乐记谱方法", "锣鼓经是什么？", "大陆传统器乐的打击乐记谱方法"),
    ("铁路沿线设有大家洼站、寒亭站", "铁路沿线设有哪些站点？", "大家洼站、寒亭站"),
    ("他的职业是足球运动员", "他的职业是什么？", "足球运动员"),
    ("The capital of France is Paris", "What is the capital of France?", "Paris"),
    # no echo, or no copula after it: untouched
    ("足球运动员", "他的职业是什么？", "足球运动员"),
    ("1903年", "他哪一年出生？", "1903年"),
    ("The Broncos defeated the Panthers", "Who did the Broncos defeat?", "The Broncos defeated the Panthers"),
    ("Denver Broncos", "Which team won Super Bowl 50?", "Denver Broncos"),
    ("锣鼓经是", "锣鼓经是什么？", "锣鼓经是"),  # nothing would be left
])
def test_map_rerank_drops_an_echo_of_the_question(answer, question, expected):
    assert drop_echo(answer, question) == expected


@pytest.mark.parametrize("answer,question,expected", [
    ("beta decay", "What is the effect of beta decay?", True),
    ("The Islamic State", "Who leads The Islamic State?", True),
    ("radioactivity", "What is the effect of beta decay?", False),
    ("Iain Banks", "Between Iain Banks and Irwin Shaw, which writer has had a more diverse career?", False),
    ("Denver", "Did Denver or Carolina win?", False),  # the question offers the choice
    ("10号", "他穿几号球衣？", False),
    ("", "What is the effect of beta decay?", False),
])
def test_an_answer_that_only_repeats_the_question(answer, question, expected):
    assert repeats_question(answer, question) is expected


def test_map_rerank_passes_over_a_chunk_that_names_the_question_back():
    hits = [_hit(1, "Beta decay is a type of radioactive decay."), _hit(2, "The effect of beta decay is radioactivity.")]
    replies = {"type of": '{"found": true, "answer": "beta decay", "score": 100}',
               "effect of": '{"found": true, "answer": "radioactivity", "score": 100}'}
    answer = run_chain("map_rerank", "What is the effect of beta decay?", hits, ChunkScriptedLLM("", replies))
    assert answer.answer == "radioactivity" and [s.chunk_id for s in answer.sources] == [2]
    echo_only = {"type of": replies["type of"], "effect of": replies["type of"]}
    nothing = run_chain("map_rerank", "What is the effect of beta decay?", hits, ChunkScriptedLLM("", echo_only))
    assert nothing.abstained


@pytest.mark.parametrize("text,n,expected", [
    ('{"choice": "B"}', 3, 1), ('```json\n{"choice": "a"}\n```', 2, 0), ("C", 3, 2), ("The answer is B) Von Miller", 2, 1),
    ('{"choice": "D"}', 3, None), ("banana", 3, None), ("", 2, None),
])
def test_judge_choice_parser(text, n, expected):
    assert parse_choice(text, n) == expected


def test_contenders_are_distinct_answers_near_the_best():
    def row(rank, answer, ev, found=True):
        return {"rank": rank, "answer": answer, "evidence": ev, "found": found}

    scored = [row(0, "Bart Starr", 1.0), row(1, "Von Miller", 0.95), row(2, "von miller.", 1.0),
              row(3, "Cam Newton", 0.5), row(4, "Peyton Manning", 1.0, found=False)]
    # one entry per answer (its best chunk), only those within NEAR of the best, never a "not found"
    assert [(o["rank"], o["answer"]) for o in contenders(scored, 30)] == [(0, "Bart Starr"), (2, "von miller.")]
    assert contenders([row(0, "x", 0.2)], 30) == []  # below the abstention line: nothing to settle
    assert len(contenders([row(0, "x", 1.0), row(1, "X!", 1.0)], 30)) == 1  # agreement is no tie


def test_the_judge_picks_one_of_the_contenders_or_stands_aside(hits, llm):
    """Real SmolLM2: with JSON the choice is constrained to the candidates' letters and asked in both orders; a
    reply without a letter leaves the evidence order to decide (None), and neither breaks the chain."""
    from ragqa.chains.base import Trace

    options = [{"rank": 0, "answer": "83,700"}, {"rank": 1, "answer": "Beaverton, Oregon"}]
    trace = Trace()
    chosen = judge_tie(QUESTION, options, hits, llm, Budget.for_llm(llm, 16), Prompts(), trace)
    assert chosen is None or chosen in options
    step = trace.steps[-1]
    assert step.name == "judge" and step.calls == 2  # both candidate orders
    assert step.detail["candidates"] == ["83,700", "Beaverton, Oregon"] and len(step.detail["votes"]) == 2
    # a choice is kept only when it survives the swap
    assert (chosen is None) == (step.detail["votes"][0] != step.detail["votes"][1] or step.detail["votes"][0] is None)
    banana = Prompts(rerank_judge="Say only the word banana. {context} {question} {candidates}")
    assert judge_tie(QUESTION, options, hits, _NoJson(llm), Budget.for_llm(llm, 8), banana, Trace()) is None
