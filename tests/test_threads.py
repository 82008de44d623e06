"""The thread budget: how many threads the LLM gets, and batch work pausing while a question is answered --
across two real processes (a CLI `ragqa ingest` and an in-process `ask`), asserted as behaviour, not timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import CACHE, NKE, make_settings
from ragqa.threads import BackgroundWork, ThreadBudget


def test_llm_threads_follow_background_work(tmp_path):
    budget = ThreadBudget(4, tmp_path / "leases")
    assert budget.llm_threads() == 4
    assert budget.llm_threads(configured=3) == 3  # an explicit setting always wins
    with BackgroundWork(budget, embed_threads=2) as work:
        assert budget.llm_threads() == 4  # holds a lease, runs nothing yet
        with work.active("extract", 1), work.active("embed", 2):
            assert budget.llm_threads() == 1
            with budget.interactive():
                seen = []
                t = threading.Thread(target=lambda: seen.append(work.pause_point("embed")))
                t.start()
                deadline = time.monotonic() + 10
                while budget.llm_threads() != 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert budget.llm_threads() == 3  # the paused stage holds no cores; extraction still runs
            t.join(10)
            assert seen and seen[0] > 0 and budget.llm_threads() == 1  # resumed after the question
    assert budget.llm_threads() == 4 and not list((tmp_path / "leases").iterdir())


def test_a_dead_process_lease_is_ignored_and_removed(tmp_path):
    budget = ThreadBudget(2, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"background-{dead.pid}-0.lease").write_text("2")
    assert budget.llm_threads() == 2
    assert not list(tmp_path.iterdir())


def test_batch_work_waits_for_questions_but_is_never_starved(tmp_path):
    budget = ThreadBudget(2, tmp_path)
    with BackgroundWork(budget, 2) as work:
        assert work.pause_point("embed") == 0.0  # nobody asking: no wait
        with budget.interactive():
            budget_wait = budget.yield_to_interactive(max_wait=0.3)
        assert 0.3 <= budget_wait < 5 and budget.pauses == 1


@pytest.mark.slow
def test_question_during_a_cli_ingest_in_another_process(tmp_path, small_pdfs, monkeypatch):
    """`ragqa ingest` of a 104-page 10-K runs in a second process; a question is answered here meanwhile.
    While the LLM generates, the threads it uses plus those the ingest keeps busy never exceed the budget,
    the ingest pauses for the question, and it still ends complete."""
    from ragqa import backends
    from ragqa.collection import Collection

    monkeypatch.delenv("RAGQA_LLM__THREADS")  # let the budget choose
    cache = tmp_path / "cache"  # a private lease folder, the shared exported embedder
    cache.mkdir()
    (cache / "models").symlink_to(CACHE / "models", target_is_directory=True)
    settings = make_settings(tmp_path / "here", threads=2).model_copy(update={"cache_dir": cache})
    coll = Collection.open("docs", settings, create=True)
    assert not coll.ingest([small_pdfs]).failed

    env = {**os.environ, "RAGQA_CACHE_DIR": str(cache), "RAGQA_THREADS": "2", "RAGQA_HOME": str(tmp_path / "there")}
    proc = subprocess.Popen([sys.executable, "-m", "ragqa", "ingest", str(NKE),
                             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    budget = backends.thread_budget(settings)
    deadline = time.monotonic() + 300
    while not sum(t for _, t in budget.leases("background")):  # the ingest is extracting or embedding
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.1)
    assert budget.llm_threads() <= 1 + (2 - sum(t for _, t in budget.leases("background")))

    llm = backends.llm(settings)
    seen: list[tuple[int, int]] = []

    def on_token(_text: str) -> None:
        background = sum(t for _, t in budget.leases("background"))
        seen.append((llm.threads_in_use, background))

    answer = coll.ask("What is the crazy ones text about?", chain="stuff", k=2, on_token=on_token)
    assert answer.answer and seen
    assert all(llm_threads + background <= 2 for llm_threads, background in seen), seen
    assert seen[-1][1] == 0  # by the end the ingest had reached a pause point and held no cores

    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["files"][0]["status"] == "ok" and result["files"][0]["chunks"] > 100
    assert result["stages"].get("paused", 0) > 0  # it did wait for the question
    check = Collection.open(None, make_settings(tmp_path / "there").model_copy(update={"cache_dir": cache}))
    assert check.check() == []
    assert not budget.leases("background") and not budget.leases("interactive")


_OTHER_LLM = """
import sys
from pathlib import Path
from ragqa.llm.llamacpp import LlamaCppLLM
from ragqa.threads import ThreadBudget
llm = LlamaCppLLM("smollm2-135m", n_ctx=2048, budget=ThreadBudget(2, Path(sys.argv[1])), cache_dir=Path(sys.argv[2]))
msgs = [{"role": "user", "content": "Count from 1 to 400, separated by commas."}]
for n, _ in enumerate(llm.stream(msgs, max_tokens=600)):
    if n == 0:
        print("generating", llm.threads_in_use, flush=True)
print("done", flush=True)
"""


def test_an_llm_in_another_process_takes_its_cores_from_ours(tmp_path):
    """Two llama.cpp processes at full threads on two cores is the collapse (docs/threads.md): the second one to
    generate takes only the cores the first leaves, and gets them back when it ends."""
    from ragqa.llm.llamacpp import LlamaCppLLM

    leases = tmp_path / "leases"
    budget = ThreadBudget(2, leases)
    ours = LlamaCppLLM("smollm2-135m", n_ctx=2048, budget=budget, cache_dir=CACHE / "models")
    other = subprocess.Popen([sys.executable, "-c", _OTHER_LLM, str(leases), str(CACHE / "models")],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "src"})
    try:
        first = other.stdout.readline().split()
        assert first == ["generating", "2"], first  # alone on the machine: both cores
        assert budget.llm_threads() == 1
        ours.complete([{"role": "user", "content": "Say hi."}], max_tokens=4)
        assert ours.threads_in_use == 1  # the other generation holds a core
        assert other.poll() is None, "the other generation must still be running for this test to mean anything"
    finally:
        out, _ = other.communicate(timeout=300)
    assert "done" in out and other.wait() == 0
    assert budget.llm_threads() == 2  # the other process is gone: its lease with it
    assert [p.name for p in leases.iterdir()] == [f"llm-{os.getpid()}.lease"]  # ours lingers, marked idle
    assert (leases / f"llm-{os.getpid()}.lease").read_text() == "idle 1"


def test_texts_ingested_from_memory_hold_the_background_lease(tmp_path, monkeypatch):
    """`Collection.ingest_texts` (the eval's paragraphs, pasted text) embeds under the same lease as a file
    ingest: while it embeds, an LLM in another process is offered the cores that are left, not all of them."""
    from ragqa import backends
    from ragqa.collection import Collection
    from ragqa.types import Text

    settings = make_settings(tmp_path, threads=4)  # its own budget key: leases of other tests do not count
    budget = backends.thread_budget(settings)
    embedder = backends.embedder(settings.embedder, settings)
    seen: list[int] = []
    real = type(embedder).embed_documents

    def recording(self, texts):
        seen.append(budget.llm_threads())
        return real(self, texts)

    monkeypatch.setattr(type(embedder), "embed_documents", recording)
    coll = Collection.open("texts", settings, create=True)
    try:
        report = coll.ingest_texts([Text(f"Paragraph {i}", f"The river number {i} flows north.") for i in range(5)])
    finally:
        coll.close()
    assert [f.status for f in report.files] == ["ok"] * 5
    assert seen and all(t == max(1, 4 - settings.embed_threads) for t in seen), seen
    assert budget.llm_threads() == 4  # the lease is gone after the ingest
