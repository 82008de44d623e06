"""docs/reference/ is generated from the code (tools/gen_reference.py) and must not go stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "tools" / "gen_reference.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)


def test_the_committed_reference_is_what_the_code_generates():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_reference.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr  # run `python tools/gen_reference.py` (make reference)


def test_a_changed_description_makes_the_check_fail(tmp_path, monkeypatch):
    class Before(BaseModel):
        chunk_tokens: int = Field(256, description="chunk size in tokens")

    class After(BaseModel):
        chunk_tokens: int = Field(256, description="chunk size in the embedder's tokens")

    committed = tmp_path / "settings.md"
    committed.write_text(gen.settings_md(Before))
    assert gen.stale({committed: gen.settings_md(Before)}) == []
    monkeypatch.setattr(gen, "ROOT", tmp_path)  # messages name paths relative to it
    [problem] = gen.stale({committed: gen.settings_md(After)})
    assert "settings.md is stale" in problem and "python tools/gen_reference.py" in problem
    assert "+| `RAGQA_CHUNK_TOKENS` | `chunk_tokens` | int | `256` | chunk size in the embedder's tokens |" in problem
