"""Shared fixtures: real embedder, real PDFs from RAGQA_DATA (default ../shared/data), state under tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA", REPO.parent / "shared" / "data")).resolve()
PDFS = DATA / "pdfs"
# The ONNX export of the embedder is cached across runs (it is derived from the wheel and keyed by its hash).
CACHE = Path(os.environ.get("RAGQA_TEST_CACHE", Path.home() / ".cache" / "ragqa-test"))


def data_file(rel: str) -> Path:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"test data {path} absent (set RAGQA_DATA to the shared data folder)")
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("RAGQA_") and key not in ("RAGQA_DATA", "RAGQA_TEST_CACHE"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # One llama.cpp thread: at two, generation collapses whenever anything else holds a core (anchors.md).
    monkeypatch.setenv("RAGQA_LLM__THREADS", "1")
    # The suite runs on SmolLM2-135M (in the base install); the default 1.5B is a 1.1 GB opt-in download.
    monkeypatch.setenv("RAGQA_LLM__MODEL", "smollm2-135m")


def make_settings(home: Path, **kw):
    from ragqa.settings import Settings

    return Settings(home=home, cache_dir=CACHE, **kw)


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def embedder():
    from ragqa import backends

    return backends.embedder("minilm", make_settings(Path("/tmp")))


@pytest.fixture(scope="session")
def nke_collection(tmp_path_factory):
    """The Nike 10-K (104 pages) ingested once; read-only for the tests that use it."""
    from ragqa.collection import Collection

    pdf = data_file("pdfs/long/nke-10k-2023.pdf")
    home = tmp_path_factory.mktemp("nke")
    coll = Collection.open("nke", make_settings(home), create=True)
    report = coll.ingest([pdf])
    assert report.files[0].status == "ok", report.files
    return coll


@pytest.fixture
def small_pdfs(tmp_path):
    """A few small real PDFs copied to tmp, so tests may change or delete them."""
    out = tmp_path / "docs"
    out.mkdir()
    for rel in ("pdfs/pypdf/crazyones.pdf", "pdfs/pdfminer/jo.pdf", "pdfs/py-pdf-sample-files/004-pdflatex-4-pages/pdflatex-4-pages.pdf"):
        shutil.copy(data_file(rel), out / Path(rel).name)
    return out


@pytest.fixture(scope="session")
def llm():
    """The embedded SmolLM2-135M: fast, answers badly, so tests assert structure and budgets, not wording."""
    from ragqa.llm.llamacpp import LlamaCppLLM

    return LlamaCppLLM("smollm2-135m", n_ctx=8192, threads=1)


@pytest.fixture(scope="session")
def small_llm():
    """The same model with a 1024-token window, where a naive concatenation of chunks overflows."""
    from ragqa.llm.llamacpp import LlamaCppLLM

    return LlamaCppLLM("smollm2-135m", n_ctx=1024, threads=1)
