"""Recursive summarisation: levels, budgets, and an interrupted `ragqa summarize` that resumes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import fixture
from ragqa.chains import Budget
from ragqa.llm.cached import ReplyCache
from ragqa.summarize import summarize_text


def _book_excerpt(chars: int) -> str:
    return fixture("long/pride_and_prejudice_pg1342_first60000.txt").read_text()[:chars]


def test_map_reduce_summary_needs_three_levels_and_never_overflows(small_llm, tmp_path):
    text = _book_excerpt(14000)
    budget = Budget(context_window=small_llm.context_window, max_tokens=160)
    progress = []
    summary = summarize_text(text, small_llm, budget=budget, target_words=60, chunk_tokens=300,
                             cache=ReplyCache(tmp_path / "c.sqlite"), on_progress=lambda *a: progress.append(a))
    assert len(summary.levels) >= 3 and summary.levels[-1] == 1, summary.levels
    assert summary.levels == sorted(summary.levels, reverse=True)
    assert summary.summary.strip()
    for step in summary.trace.steps:
        if step.calls:
            assert step.max_prompt_tokens + budget.max_tokens <= small_llm.context_window
    assert {p[0] for p in progress} >= {"level 1", "final"}
    again = summarize_text(text, small_llm, budget=budget, target_words=60, chunk_tokens=300,
                           cache=ReplyCache(tmp_path / "c.sqlite"))
    assert again.summary == summary.summary and again.trace.totals()["calls"] == 0
    assert again.cached_calls == sum(summary.levels)


def _run(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "ragqa", "summarize", *args], env=env, **kw)


def test_interrupted_summarize_resumes_without_redoing_work(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text(_book_excerpt(16000))
    base = {**os.environ, "RAGQA_LLM__N_CTX": "1024", "RAGQA_LLM__MAX_TOKENS": "160", "RAGQA_THREADS": "2"}
    args = [str(book), "--target-words", "60", "--json"]

    clean = subprocess.run([sys.executable, "-m", "ragqa", "summarize", *args], capture_output=True, text=True,
                           env={**base, "RAGQA_CACHE_DIR": str(tmp_path / "clean")}, timeout=900)
    assert clean.returncode == 0, clean.stderr
    expected = json.loads(clean.stdout)[0]

    env = {**base, "RAGQA_CACHE_DIR": str(tmp_path / "resume")}
    cache = tmp_path / "resume" / "summaries.sqlite"
    proc = _run(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 600, 0
    while time.monotonic() < deadline and proc.poll() is None:
        if cache.exists():
            try:
                done = sqlite3.connect(cache).execute("SELECT count(*) FROM replies").fetchone()[0]
            except sqlite3.Error:
                done = 0
            if done >= 8:
                break
        time.sleep(0.1)
    assert proc.poll() is None, "finished before the interruption"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sqlite3.connect(cache).execute("SELECT count(*) FROM replies").fetchone()[0]
    assert 0 < done < sum(expected["levels"])

    resumed = subprocess.run([sys.executable, "-m", "ragqa", "summarize", *args], capture_output=True, text=True,
                             env=env, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)[0]
    assert result["summary"] == expected["summary"]
    assert result["levels"] == expected["levels"]
    assert result["cached_calls"] >= done
    assert result["trace"]["calls"] == sum(expected["levels"]) - result["cached_calls"]
