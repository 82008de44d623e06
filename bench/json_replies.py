"""How many of a model's JSON replies ragqa can read: strict `json.loads` of the first `{...}` (what ragqa read
before) against strict-then-`json-repair` (what `ragqa.llm.base.json_object` does now).

Replies are real: the embedded model answers the map_rerank JSON prompt and the graph-extraction prompt on the
first `--n` SQuAD dev (part a) questions' paragraphs, with no grammar constraint (the path taken by backends that
cannot constrain output), once at the production reply length and once cut short (`--short` tokens), the case
a reply stops at max_tokens. Counted with ragqa's own readers: answers map_rerank reads (`parse`), and grounded
triples graph extraction keeps (`LLMExtractor._read`: names found in the passage; of a repaired reply, the last
triple, which may be cut, is dropped). Replies are cached, so a re-run only re-parses.

    RAGQA_DATA=../shared/data .venv/bin/python bench/json_replies.py [--model smollm2-135m] [--n 40]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

from ragqa.chains.prompts import Prompts
from ragqa.eval.datasets import load_eval_set
from ragqa.graph import llm_extract
from ragqa.graph.llm_extract import PROMPT, LLMExtractor
from ragqa.llm.base import json_object
from ragqa.llm.cached import CachedLLM
from ragqa.settings import Settings
from ragqa.types import Chunk

map_rerank = importlib.import_module("ragqa.chains.map_rerank")  # the module (ragqa.chains exports the function)
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()


def readings(kind: str, reply: str, chunk: Chunk) -> int:
    """What ragqa's own reader takes from a reply: 1 if map_rerank reads an answer, else the number of grounded
    triples graph extraction keeps."""
    if kind == "rerank":
        answer, _, parsed = map_rerank.parse(reply)
        return int(parsed and bool(answer))
    return len(LLMExtractor(None)._read(reply, chunk, None)[1])


@contextlib.contextmanager
def strict_only():
    """The readers as they were before json-repair: strict JSON or nothing."""
    saved = map_rerank.json_object, llm_extract.parse_reply
    map_rerank.json_object = llm_extract.parse_reply = lambda text, repair=True: json_object(text, repair=False)
    try:
        yield
    finally:
        map_rerank.json_object, llm_extract.parse_reply = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--short", type=int, default=40, help="tokens of the cut-short replies")
    args = ap.parse_args()

    settings = Settings(llm={"backend": "llamacpp", "model": args.model})
    from ragqa import backends
    llm = CachedLLM(backends.llm(settings), settings.cache_dir / "bench-json-replies.sqlite")
    data = load_eval_set(DATA / "qa" / "squad_v1.1_dev_part_a.json").limit(args.n)
    paragraphs = {p.pid: p for p in data.paragraphs}
    prompts = Prompts()
    cases = []
    for q in data.questions:
        text = paragraphs[q.gold[0]].text
        chunk = Chunk(q.qid, 0, text, 1, 1, 0, len(text))
        cases.append(("rerank", prompts.rerank_json.format(context=text, question=q.question), 96, chunk))
        cases.append(("extract", PROMPT.format(max_triples=8, title="", text=text), 320, chunk))
    rows: dict[str, dict] = {}
    started = time.perf_counter()
    for kind, prompt, full, chunk in cases:
        for length, tokens in (("full", full), ("short", args.short)):
            reply = llm.complete([{"role": "user", "content": prompt}], max_tokens=tokens, temperature=0.0).text
            row = rows.setdefault(f"{kind}/{length}", {"replies": 0, "strict": 0, "strict_then_repair": 0,
                                                       "max_tokens": tokens,
                                                       "counts": "answers read" if kind == "rerank" else
                                                       "grounded triples kept"})
            row["replies"] += 1
            with strict_only():
                row["strict"] += readings(kind, reply, chunk)
            row["strict_then_repair"] += readings(kind, reply, chunk)
    seconds = time.perf_counter() - started
    for row in rows.values():
        row["gained"] = row["strict_then_repair"] - row["strict"]
    parse_us = {}
    sample = [c[1] for c in cases[:20]]
    for name, fn in (("strict", lambda r: json_object(r, repair=False)), ("strict_then_repair", json_object)):
        replies = [llm.complete([{"role": "user", "content": p}], max_tokens=args.short).text for p in sample]
        t = time.perf_counter()
        for _ in range(20):
            for r in replies:
                fn(r)
        parse_us[name] = round((time.perf_counter() - t) / (20 * len(replies)) * 1e6, 1)
    out = {"model": args.model, "questions": args.n, "set": "qa/squad_v1.1_dev_part_a", "rows": rows,
           "parse_microseconds_per_reply_short": parse_us, "seconds": round(seconds, 1),
           "machine": machine_info(("json-repair", "llama-cpp-python"))}
    path = ROOT / "bench" / "results" / f"json_replies_{args.model}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("rows", "parse_microseconds_per_reply_short", "seconds")}, indent=2))


if __name__ == "__main__":
    main()
