"""schemathesis against a real `ragqa serve`, without API keys and with them: no input gets a 5xx, every response
matches the schema (status, content type, body), every request the schema allows is accepted, and with keys no
route answers without one.

Bounded and repeatable: the examples, coverage and fuzzing phases, 10 generated cases per operation, deterministic
generation. The command is the one docs/api.md gives (`FUZZ_ARGS`); tests/api/schemathesis_hooks.py supplies real
files for the upload media types and short questions for the routes that run the LLM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, make_settings
from ragqa.api.app import create_app

from .conftest import CRAZY, Server

HERE = Path(__file__).resolve().parent
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance," \
         "positive_data_acceptance"
FUZZ_ARGS = ["--phases", "examples,coverage,fuzzing", "-n", "10", "--generation-deterministic",
             "--request-timeout", "300", "--checks"]
KEY = "fuzz-key"


def schemathesis(url: str, tmp: Path, *extra: str) -> str:
    cmd = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json", *extra]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(HERE), "NO_COLOR": "1"}
    proc = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "Operations:       16 selected / 16 total" in out and "Tested: 16" in out, out[-3000:]
    assert " failed" not in out.split("SUMMARY")[-1] and "errored" not in out, out[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("keys", [False, True], ids=["no-keys", "keys"])
def test_schemathesis_finds_no_5xx_and_no_schema_violation(tmp_path, keys):
    extra = {"RAGQA_SERVER__API_KEYS": f'{{"{KEY}": ["*"]}}'} if keys else {}
    srv = Server(tmp_path / "home", RAGQA_LLM__MAX_TOKENS="16", RAGQA_SERVER__MAX_UPLOAD_MB="1", **extra).start()
    try:
        srv.ingest("default", [CRAZY], key=KEY if keys else None)  # the collection the schema's examples name
        checks = CHECKS + (",ignored_auth" if keys else "")
        auth = ["-H", f"Authorization: Bearer {KEY}"] if keys else []
        out = schemathesis(srv.url, tmp_path, *FUZZ_ARGS, checks, *auth)
        assert " passed" in out.split("Test cases:")[-1]
    finally:
        srv.stop()
        srv.client.close()


def test_the_documented_fuzz_command_is_the_one_tested():
    doc = (REPO / "docs" / "api.md").read_text()
    assert " ".join(FUZZ_ARGS) + " " + CHECKS in doc
    assert "SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=tests/api" in doc


def test_the_schema_asks_for_a_bearer_token_only_when_the_server_checks_one(tmp_path):
    def secured(settings) -> set[str]:
        schema = create_app(settings).openapi()
        return {f"{method} {path}" for path, ops in schema["paths"].items() for method, op in ops.items()
                if isinstance(op, dict) and op.get("security")}

    assert secured(make_settings(tmp_path / "open")) == set()
    assert "post /v1/query" in secured(make_settings(tmp_path / "keys", server={"api_keys": {"k": ["*"]}}))
