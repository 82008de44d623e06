"""docs/reference/ is generated from the code (tools/gen_reference.py) and must not go stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "tools" / "gen_reference.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)


def test_the_committed_reference_is_what_the_code_generates():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_reference.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, (f"{result.stderr}\ndocs/reference/ is stale: `python tools/gen_reference.py` "
                                    "(make reference) regenerates it")


def test_the_benchmarks_page_is_what_the_result_files_give():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "report.py"), "--check"], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr  # run `python bench/report.py` (make bench-report)


def test_a_changed_description_makes_the_check_fail(tmp_path):
    from ragqa.settings import Settings

    class Changed(Settings):  # the real settings, one description edited and the docs not regenerated
        chunk_tokens: int = Field(256, ge=16, description="chunk size in tokens of the embedder")

    committed = tmp_path / "settings.md"
    committed.write_text((ROOT / "docs" / "reference" / "settings.md").read_text())
    assert gen.stale({committed: gen.settings_md(Settings)}) == []
    [problem] = gen.stale({committed: gen.settings_md(Changed)})
    assert f"{committed} is stale" in problem and "python tools/gen_reference.py" in problem
    assert "-| `RAGQA_CHUNK_TOKENS` | `chunk_tokens` | int | `256` | chunk size in the embedder's tokens" in problem
    assert "+| `RAGQA_CHUNK_TOKENS` | `chunk_tokens` | int | `256` | chunk size in tokens of the embedder |" in problem


def test_nested_settings_and_machine_dependent_defaults():
    class Inner(BaseModel):
        backend: Literal["a", "b"] | None = Field(None, description="x | y")

    class Outer(BaseModel):
        inner: Inner = Field(default_factory=Inner)
        keys: dict[str, list[str]] = Field(default_factory=dict, description="keys")

    assert gen.settings_rows(Outer) == [
        "| `RAGQA_INNER__BACKEND` | `inner.backend` | a \\| b \\| None | unset | x \\| y |",
        "| `RAGQA_KEYS` | `keys` | dict[str, list[str]] | `{}` | keys |",
    ]

    class Computed(BaseModel):  # e.g. os.cpu_count(): each machine would generate another file
        workers: int = Field(default_factory=lambda: 3)

    class Absolute(BaseModel):  # e.g. Path.home() / "x"
        where: Path = Path("/srv/ragqa")

    with pytest.raises(SystemExit, match="workers: default_factory .* describe its default in COMPUTED"):
        gen.settings_rows(Computed)
    with pytest.raises(SystemExit, match="where: default /srv/ragqa is a path of this machine"):
        gen.settings_rows(Absolute)
