"""Shared fixtures: real embedder, real files (committed under tests/fixtures, the big sets from RAGQA_DATA),
state under tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
EXAMPLES = REPO / "examples"
NKE = EXAMPLES / "nke-10k-2023.pdf"  # the demo document: NIKE's FY2023 10-K, 104 pages
DATA = Path(os.environ.get("RAGQA_DATA", REPO.parent / "shared" / "data")).resolve()
PDFS = DATA / "pdfs"
# Under CI every test runs: a missing shared file is an error there, a skip with its reason elsewhere.
REQUIRE_DATA = os.environ.get("RAGQA_REQUIRE_DATA", "") not in ("", "0")
NEEDS_DATA = "needs the shared data set"
# The ONNX export of the embedder is cached across runs (it is derived from the wheel and keyed by its hash).
CACHE = Path(os.environ.get("RAGQA_TEST_CACHE", Path.home() / ".cache" / "ragqa-test"))


def fixture(rel: str) -> Path:
    """A small real file committed under tests/fixtures (provenance in its README), or `NKE`: always there."""
    path = FIXTURES / rel  # an absolute path (str(NKE)) stays itself
    if not path.exists():
        pytest.fail(f"committed fixture {path} is missing (tests/fixtures/README.md lists them)")
    return path


def data_file(rel: str) -> Path:
    """A file of the large shared data set: skipped with the reason on a user's machine, an error under CI."""
    path = DATA / rel
    if not path.exists():
        reason = f"{NEEDS_DATA}: {path} is absent (set RAGQA_DATA to the shared data folder)"
        if REQUIRE_DATA:
            pytest.fail(f"{reason}; RAGQA_REQUIRE_DATA=1 makes a missing file an error")
        pytest.skip(reason)
    return path


def dies_by(sig_name: str = "SIGSEGV"):
    """A child-process runner for ragqa.cpu whose child really runs and is killed by `sig_name`: how a machine
    that refuses an instruction (AMX on some VMs) answers the probes."""
    from ragqa import cpu

    real = cpu.run_child  # bound now: tests monkeypatch cpu.run_child with this very runner

    def run(source, *args, **kw):
        return real(f"import os, signal; os.kill(os.getpid(), signal.{sig_name})")
    return run


def pytest_terminal_summary(terminalreporter):
    """One line that says how many tests skipped for want of the shared data, and where it was looked for."""
    skipped = terminalreporter.stats.get("skipped", [])
    for_data = sum(1 for r in skipped if NEEDS_DATA in str(getattr(r, "longrepr", "")))
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} skipped: {for_data} of them because the shared data set is "
                                    f"absent at {DATA} (RAGQA_DATA); the reasons of the rest are listed above")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("RAGQA_") and key not in ("RAGQA_DATA", "RAGQA_TEST_CACHE", "RAGQA_REQUIRE_DATA"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # One llama.cpp thread: at two, generation collapses whenever anything else holds a core (docs/threads.md).
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

    pdf = NKE
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
        shutil.copy(fixture(rel), out / Path(rel).name)
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
