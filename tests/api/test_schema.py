"""schemathesis against the app's own OpenAPI schema, in process over ASGI: no input gets a 5xx.

Bounded: 20 examples per operation, 6 for the routes that run the LLM (a one-page collection, 16-token
answers). Written with schemathesis's Python API and hypothesis directly (its pytest plugin's lazy
fixtures do not run under pytest 9.2): one hypothesis run per operation, derandomized, so reruns are identical.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from conftest import fixture, make_settings
from ragqa.api.app import create_app
from ragqa.collection import Collection

from .conftest import CRAZY

LLM_ROUTES = re.compile(r"^/v1/(query|chat/completions|summarize)$")


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    s = make_settings(tmp_path_factory.mktemp("fuzz"))
    s.llm.max_tokens = 16
    s.llm.threads = 1  # steady on a busy machine; see conftest.server_env
    s.server.max_upload_mb = 1
    coll = Collection.open("default", s, create=True)  # the collection the schema's examples name
    assert coll.ingest([fixture(CRAZY)]).files[0].status == "ok"
    coll.close()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(s))
    yield schema
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()  # stops the app's job worker


def shorten(body, limit: int = 64) -> None:
    """Tiny inputs for the LLM routes: a 4,000-character question costs SmolLM2 a minute on 2 cores."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("question", "content") and isinstance(value, str):
                body[key] = value[:limit]
            else:
                shorten(value, limit)
    elif isinstance(body, list):
        for item in body:
            shorten(item, limit)


def fuzzer(operation, examples: int, statuses: dict):
    name = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    def fuzz(case):
        if LLM_ROUTES.match(operation.path):
            shorten(case.body)
        response = case.call_and_validate(checks=[not_a_server_error], timeout=300)
        statuses.setdefault(name, set()).add(response.status_code)

    return fuzz


def test_no_input_gets_a_5xx(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        fuzzer(operation, 6 if LLM_ROUTES.match(operation.path) else 20, statuses)()
    assert len(statuses) == len(operations) >= 14
    assert all(code < 500 for codes in statuses.values() for code in codes)


def test_the_schema_asks_for_a_bearer_token_only_when_the_server_checks_one(tmp_path):
    def secured(settings) -> set[str]:
        schema = create_app(settings).openapi()
        return {f"{method} {path}" for path, ops in schema["paths"].items() for method, op in ops.items()
                if isinstance(op, dict) and op.get("security")}

    assert secured(make_settings(tmp_path / "open")) == set()
    assert "post /v1/query" in secured(make_settings(tmp_path / "keys", server={"api_keys": {"k": ["*"]}}))
