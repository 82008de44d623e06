"""Follow-up questions: the cheap test that skips the rewrite, the checks on a rewrite, history trimming, and a
caller's instruction reaching every chain's answering step; the real SmolLM2-135M answers and rewrites."""

from __future__ import annotations

import pytest

from ragqa.chains import Prompts, run_chain
from ragqa.chains.base import Trace
from ragqa.chains.conversation import Turn, condense, fit_history, stands_alone, turns, usable
from ragqa.errors import InputError
from ragqa.types import Hit

NIKE = [Turn("user", "How many employees did NIKE have as of May 31, 2023?"),
        Turn("assistant", "NIKE had approximately 83,700 employees.")]


@pytest.mark.parametrize("question,alone", [
    ("And how many did it have in 2022?", False),  # a pronoun
    ("What about their revenue?", False),
    ("Where is its headquarters located?", False),
    ("What about 2022?", False),  # continues the last question
    ("And in Europe?", False),
    ("Why?", False),  # too short to stand alone
    ("How much revenue did the company report?", False),  # names nothing after a turn that did
    ("What was NIKE's revenue in fiscal 2023?", True),
    ("Who is the chief executive of Converse?", True),
    ("它的总部在哪里？", False),
    ("耐克公司有多少员工？", True),
])
def test_the_cheap_test_sends_only_dependent_questions_to_a_rewrite(question, alone):
    assert stands_alone(question, NIKE)[0] is alone
    assert stands_alone(question, [])[0] is True  # a first question is searched as it is
    assert stands_alone(question, [Turn("assistant", "Hello")])[0] is True  # no user turn before it


def test_turns_keep_user_and_assistant_text_and_drop_ragqas_sources_list():
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Who founded NIKE?"},
                {"role": "assistant", "content": "Phil Knight [1].\n\nSources:\n[1] nke-10k-2023.pdf, p. 3"},
                {"role": "tool", "content": "ignored"},
                {"role": "user", "content": [{"type": "text", "text": "When?"}]},
                {"role": "assistant", "content": None}]
    assert turns(messages) == [Turn("user", "Who founded NIKE?"), Turn("assistant", "Phil Knight [1]."),
                               Turn("user", "When?")]
    with pytest.raises(InputError, match="unknown role"):
        turns([{"role": "bot", "content": "hi"}])
    with pytest.raises(InputError, match="role and a content"):
        turns(["hello"])


@pytest.mark.parametrize("rewritten,ok", [
    ("How many employees did NIKE have in 2022?", True),
    ("NIKE had 79,100 employees in 2022.", False),  # an answer, not a question
    ("And how many did it have in 2022?", False),  # brought nothing from the conversation
    ("", False),
    ("How many employees did NIKE have in 2022? " * 20, False),  # longer than any rewrite of it
    ("How many employees did NIKE have as of 2023?", False),  # lost the year the follow-up asks about
])
def test_a_rewrite_is_used_only_when_it_resolves_the_follow_up(rewritten, ok):
    history = "\n".join(f"{t.role}: {t.text}" for t in NIKE)
    assert usable(rewritten, "And how many did it have in 2022?", history) is ok


def test_long_histories_lose_their_oldest_turns_first(llm):
    history = [Turn("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * 40) for i in range(12)]
    kept = fit_history(history, llm, 200)
    assert kept and kept == history[-len(kept):] and len(kept) < len(history)
    assert sum(llm.count_tokens(t.text) for t in kept) <= 200
    one = fit_history([Turn("user", "word " * 500)], llm, 50)  # a newest turn that alone is too long keeps its start
    assert len(one) == 1 and llm.count_tokens(one[0].text) <= 50 and one[0].text.startswith("word")


def test_a_follow_up_is_rewritten_in_one_recorded_call_and_a_standalone_one_in_none(llm):
    from ragqa.chains import Budget

    budget = Budget.for_llm(llm, 96)
    trace = Trace()
    alone = condense("What was NIKE's revenue in fiscal 2023?", NIKE, llm, Prompts(), trace, budget=budget)
    assert alone.rewritten == "no" and alone.search == alone.question == "What was NIKE's revenue in fiscal 2023?"
    assert trace.steps == []
    follow = condense("And how many did it have in 2022?", NIKE, llm, Prompts(), trace, budget=budget)
    assert [s.name for s in trace.steps] == ["rewrite"] and trace.steps[0].calls == 1
    assert follow.rewritten in ("llm", "fallback") and follow.reason == "points back (it)"
    # either way what is searched now names what the conversation was about
    assert "NIKE" in follow.search and "2022" in follow.search
    assert trace.steps[0].detail["used"] == follow.rewritten


class Recording:
    """The real model, with the messages of every call kept so a test can read the prompts it was sent."""

    def __init__(self, llm):
        self.llm, self.prompts = llm, []

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def complete(self, messages, **kw):
        self.prompts.append(messages)
        return self.llm.complete(messages, **kw)

    def complete_many(self, batch, **kw):
        self.prompts.extend(batch)
        return self.llm.complete_many(batch, **kw)

    def stream(self, messages, **kw):
        self.prompts.append(messages)
        yield from self.llm.stream(messages, **kw)


@pytest.mark.parametrize("chain", ["stuff", "map_reduce", "refine", "map_rerank"])
def test_an_instruction_follows_the_citation_rules_in_the_answering_step(chain, llm):
    hits = [Hit(i, "d", "nke.pdf", 1, 1, text, 1.0, "dense") for i, text in enumerate(
        ["NIKE had approximately 83,700 employees worldwide.", "NIKE's headquarters are in Beaverton, Oregon."])]
    prompts = Prompts().with_instruction("Answer in French.")
    recording = Recording(llm)
    run_chain(chain, "How many employees did NIKE have?", hits, recording, prompts=prompts)
    answering = recording.prompts[-1] if chain != "map_rerank" else recording.prompts[0]
    system = answering[0]
    assert system["role"] == "system" and system["content"].endswith("(the rules above still apply): Answer in French.")
    if chain == "stuff":
        assert system["content"].index(Prompts().cite.strip()) < system["content"].index("Answer in French.")
    if chain == "map_reduce":  # the map step extracts text; only the answer it combines into is instructed
        assert all("Answer in French." not in m[0]["content"] for m in recording.prompts[:-1])
    assert Prompts().with_instruction("  ") == Prompts()
