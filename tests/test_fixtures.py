"""The committed fixtures are the files their README says they are: present, listed, and unchanged."""

from __future__ import annotations

import hashlib
import re

from conftest import FIXTURES, NKE


def _listed() -> dict[str, str]:
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{16})` \|$", (FIXTURES / "README.md").read_text(), re.M)
    return dict(rows)


def test_every_fixture_is_listed_with_its_provenance_and_unchanged():
    listed = _listed()
    present = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*")
               if p.is_file() and p.name not in ("README.md", "hostile.py") and "__pycache__" not in p.parts}
    assert present == set(listed), "tests/fixtures/README.md and the folder disagree"
    for rel, sha in listed.items():
        assert hashlib.sha256((FIXTURES / rel).read_bytes()).hexdigest().startswith(sha), rel


def test_the_demo_document_is_the_one_its_readme_names():
    readme = (NKE.parent / "README.md").read_text()
    assert hashlib.sha256(NKE.read_bytes()).hexdigest() in readme
