"""The three examples of docs/integrations.md, run as a user runs them (each file is also the docs' code):
over a real collection, with llama.cpp's server and SmolLM2 standing in for the 1.5B in the LCEL example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from conftest import CACHE, REPO, fixture, make_settings
from ragqa.collection import Collection
from ragqa.llm.registry import gguf_path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

EXAMPLES = ["langchain_lcel.py", "llama_index_vector_store.py", "llama_index_query_engine.py"]
QUESTION = "Who are the crazy ones?"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("examples")
    coll = Collection.open("demo", make_settings(home), create=True)
    assert coll.ingest([fixture("pdfs/pypdf/crazyones.pdf")]).files[0].status == "ok"
    coll.close()
    return home


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port, log = free_port(), tmp_path_factory.mktemp("llama") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path("smollm2-135m")),
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1"],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):  # bounded: 120 s
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(log.read_text(errors="replace")[-3000:])
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def run(example: str, home, **env) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    full.update(RAGQA_HOME=str(home), RAGQA_COLLECTION="demo", RAGQA_CACHE_DIR=str(CACHE), HF_HUB_OFFLINE="1",
                RAGQA_LLM__MODEL="smollm2-135m", RAGQA_LLM__THREADS="1", RAGQA_LLM__MAX_TOKENS="48", **env)
    result = subprocess.run([sys.executable, str(REPO / "examples" / example), QUESTION], env=full,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_langchain_lcel_chain(home, llama_server):
    out = run("langchain_lcel.py", home, LLM_URL=llama_server, MAX_TOKENS="48")
    answer, cited = out.rsplit("Sources: ", 1)
    assert answer.strip() and cited.strip() == "crazyones.pdf, p. 1"


def test_llama_index_vector_store_index(home):
    lines = run("llama_index_vector_store.py", home).strip().splitlines()
    assert lines and re.match(r"^-?\d\.\d{3}  crazyones\.pdf, p\. 1: The Crazy Ones", lines[0]), lines


def test_llama_index_query_engine(home):
    out = run("llama_index_query_engine.py", home)
    assert "  [crazyones.pdf, p. 1]" in out and re.search(r"\(auto:[\w>]+, \d+ LLM calls\)", out), out


def test_the_docs_show_the_examples_as_they_are():
    doc = (REPO / "docs" / "integrations.md").read_text()
    for example in EXAMPLES:
        assert (REPO / "examples" / example).read_text().strip() in doc, example
