"""schemathesis hooks for fuzzing a ragqa server: real files for the media types its uploads declare, and short
questions for the routes that run the LLM.

    SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=tests/api schemathesis run ...   (docs/api.md, "Fuzzing")

The upload schemas list the media types a file part may be sent as (`encoding.contentType`); schemathesis makes a
file of each from the strategies below. Without them it sends random bytes as `application/pdf`, which the server
rightly refuses: a schema cannot say "the bytes are a PDF".
"""

from __future__ import annotations

import re
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
# One-page real PDFs: The Crazy Ones (pypdf's sample) and a page with no text (fails alone in its job: no text).
PDFS = [(HERE.parent / "fixtures/pdfs/pypdf/crazyones.pdf").read_bytes(),
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 1 1]>>endobj trailer<</Root 1 0 R>>\n%%EOF\n"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=400)

schemathesis.openapi.media_type("application/pdf", st.sampled_from(PDFS))
for media_type in ("text/plain", "text/markdown", "text/x-rst"):
    schemathesis.openapi.media_type(media_type, TEXT.map(lambda t: t.encode("utf-8")))

LLM_ROUTES = re.compile(r"/v1/(query|chat/completions|summarize)$")
QUESTION_CHARS = 64  # a 4,000-character question costs SmolLM2 a minute on 2 cores


def _shorten(body) -> None:
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("question", "content", "text") and isinstance(value, str):
                body[key] = value.strip()[:QUESTION_CHARS] or value[:QUESTION_CHARS]  # keeps its text
            else:
                _shorten(value)
    elif isinstance(body, list):
        for item in body:
            _shorten(item)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    if LLM_ROUTES.search(case.operation.path):
        _shorten(case.body)
