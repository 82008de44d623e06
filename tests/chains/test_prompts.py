"""Prompts file: the overrides a user writes in RAGQA_PROMPTS_FILE."""

from pathlib import Path

import pytest

from ragqa.chains.map_reduce import Piece, combine_messages
from ragqa.chains.prompts import Prompts
from ragqa.chains.stuff import messages
from ragqa.errors import ConfigError
from ragqa.eval.answers import SHORT, short_answer_prompts
from ragqa.types import Hit


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_keeps_the_defaults_with_the_citation_request():
    prompts = Prompts.load(None)
    assert prompts == Prompts()
    assert "[1]" in prompts.cite


def test_a_file_that_sets_system_alone_is_the_whole_system_prompt(tmp_path):
    # Written before `cite` had its own key: the user's text already ends with a citation request of its own.
    own = "Answer from the context only. Cite the sources you use by their number, like [1]."
    prompts = Prompts.load(_file(tmp_path, f'system = "{own}"\n'))
    assert prompts.system + prompts.cite == own


def test_a_file_that_sets_system_and_cite_gets_both(tmp_path):
    prompts = Prompts.load(_file(tmp_path, 'system = "Be brief."\ncite = " Cite like (1)."\n'))
    assert prompts.system + prompts.cite == "Be brief. Cite like (1)."


def test_other_keys_leave_the_citation_request_alone(tmp_path):
    prompts = Prompts.load(_file(tmp_path, 'combine = "{summaries}\\nQ: {question}\\nA:"\n'))
    assert prompts.combine == "{summaries}\nQ: {question}\nA:"
    assert prompts.cite == Prompts().cite and prompts.stuff_context == Prompts().stuff_context


def test_stuff_puts_the_context_in_the_system_message_and_the_question_last_alone():
    hits = [Hit(7, "d", "report.pdf", 3, 3, "Revenue was 83,700.", 1.0)]
    system, user = messages("What was revenue?", hits, Prompts())
    assert system["content"].startswith(Prompts().system + Prompts().cite)
    assert system["content"].endswith("[1] (report.pdf, p. 3)\nRevenue was 83,700.")
    assert user["content"] == "What was revenue?"


def test_map_reduce_combines_with_the_summaries_in_the_system_message_and_the_question_last_alone():
    pieces = [Piece("[1] (report.pdf, p. 3) Revenue was 83,700.", [])]
    system, user = combine_messages("What was revenue?", pieces, Prompts())
    assert system == {"role": "system", "content": Prompts().combine_context.format(summaries=pieces[0].text)}
    assert system["content"].endswith("----------------\n[1] (report.pdf, p. 3) Revenue was 83,700.")
    assert user == {"role": "user", "content": "What was revenue?"}
    short = short_answer_prompts(Prompts())
    assert combine_messages("What was revenue?", pieces, short)[1]["content"] == "What was revenue?" + SHORT


def test_a_combine_prompt_that_holds_the_summaries_itself_stays_one_message(tmp_path):
    # Written before `combine_context` existed, when `combine` was the one user message with the summaries in it.
    prompts = Prompts.load(_file(tmp_path, 'combine = "{summaries}\\nQ: {question}\\nFINAL ANSWER:"\n'))
    pieces = [Piece("[1] (a.txt, p. 1) Ann did.", [])]
    assert combine_messages("Who?", pieces, prompts) == [
        {"role": "user", "content": "[1] (a.txt, p. 1) Ann did.\nQ: Who?\nFINAL ANSWER:"}]
    short = short_answer_prompts(prompts)
    assert combine_messages("Who?", pieces, short)[0]["content"].endswith(SHORT.strip() + "\nFINAL ANSWER:")


def test_a_stuff_prompt_that_holds_the_context_itself_gets_it_once(tmp_path):
    # Written before `stuff_context` existed, when `stuff` was the user message with the context in it.
    prompts = Prompts.load(_file(tmp_path, 'stuff = "{context}\\nQ: {question}\\nA:"\n'))
    system, user = messages("Who?", [Hit(1, "d", "a.txt", 1, 1, "Ann did.", 1.0)], prompts)
    assert user["content"] == "[1] (a.txt, p. 1)\nAnn did.\nQ: Who?\nA:"
    assert "Ann did." not in system["content"] and system["content"] == Prompts().system + Prompts().cite


def test_unknown_keys_and_broken_toml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown prompt names.*'sytem'"):
        Prompts.load(_file(tmp_path, 'sytem = "typo"\n'))
    with pytest.raises(ConfigError, match="cannot read prompts file"):
        Prompts.load(_file(tmp_path, 'system = "unterminated\n'))
    with pytest.raises(ConfigError, match="cannot read prompts file"):
        Prompts.load(tmp_path / "missing.toml")
