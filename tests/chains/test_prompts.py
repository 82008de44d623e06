"""Prompts file: the overrides a user writes in RAGQA_PROMPTS_FILE."""

from pathlib import Path

import pytest

from ragqa.chains.prompts import Prompts
from ragqa.errors import ConfigError


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
    prompts = Prompts.load(_file(tmp_path, 'stuff = "{context}\\nQ: {question}\\nA:"\n'))
    assert prompts.stuff == "{context}\nQ: {question}\nA:"
    assert prompts.cite == Prompts().cite


def test_unknown_keys_and_broken_toml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown prompt names.*'sytem'"):
        Prompts.load(_file(tmp_path, 'sytem = "typo"\n'))
    with pytest.raises(ConfigError, match="cannot read prompts file"):
        Prompts.load(_file(tmp_path, 'system = "unterminated\n'))
    with pytest.raises(ConfigError, match="cannot read prompts file"):
        Prompts.load(tmp_path / "missing.toml")
