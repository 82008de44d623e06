"""LangChain's own chains (langchain-classic) on the inputs `bench/chains.py` hands over, against the same
OpenAI-compatible server ragqa uses, counted by a callback handler.

Runs in .venv-bench (langchain-classic, langchain-openai); imports nothing from ragqa. `bench/chains.py` writes
a JSON job file and starts it; it prints one JSON object as its last line of standard output:

    .venv-bench/bin/python bench/langchain_chains.py JOB.json

Job, `"mode": "qa"`: `load_qa_chain(ChatOpenAI(...), chain_type=CHAIN)` invoked once per question on the very
chunks ragqa retrieved (`{"question", "docs": [{"text", "metadata"}]}`), in order. Job, `"mode": "summarize"`:
`load_summarize_chain(ChatOpenAI(...), chain_type="map_reduce")` on the chunks given, with `.invoke` (LangChain's
synchronous path: map calls one after another) and/or `.ainvoke` (the async path: map calls gathered
concurrently; the collapse stays sequential).

The model is `ChatOpenAI(base_url=URL + "/v1", api_key="EMPTY", temperature=0, max_tokens=MAX_TOKENS)`. Its token
counts (used by map_reduce's `token_max=3000` collapse test) come from the server's own tokenizer
(`custom_get_token_ids` -> POST /extras/tokenize): the same model's tokens, and no tiktoken download.

Counted per invocation by a callback handler: LLM calls (`on_llm_end` generations), prompt and completion tokens
(each generation's `usage_metadata`, else `llm_output["token_usage"]`), LLM errors (`on_llm_error`), wall
seconds. An exception (map_rerank's RegexParser refusing a reply, a context overflow the server rejects) is
recorded as the invocation's error, with the calls made before it; it never stops the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
import warnings

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from machine import version  # noqa: E402  (stdlib only: runs in .venv-bench too)


def _versions() -> dict[str, str | None]:
    return {dist: version(dist) for dist in ("langchain-core", "langchain-classic", "langchain-openai", "openai", "httpx")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job", help="JSON job file written by bench/chains.py")
    args = ap.parse_args(argv)
    with open(args.job) as f:
        job = json.load(f)

    warnings.filterwarnings("ignore")  # load_qa_chain / load_summarize_chain deprecation notices
    logging.basicConfig(level=logging.ERROR)

    import httpx
    from langchain_classic.chains.question_answering import load_qa_chain
    from langchain_classic.chains.summarize import load_summarize_chain
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.documents import Document
    from langchain_openai import ChatOpenAI

    url = job["url"].rstrip("/")
    tokenizer = httpx.Client(timeout=600)

    def server_token_ids(text: str) -> list[int]:
        r = tokenizer.post(url + "/extras/tokenize", json={"input": text})
        r.raise_for_status()
        return r.json()["tokens"]

    class Usage(BaseCallbackHandler):
        """Calls and tokens of every LLM call under the invocation it is passed to."""

        def __init__(self):
            self.lock = threading.Lock()
            self.calls = self.prompt_tokens = self.completion_tokens = self.llm_errors = 0
            self.unmetered = 0  # calls that reported no usage at all

        def on_llm_end(self, response, **kwargs):
            with self.lock:
                metered = False
                for generations in response.generations:
                    for g in generations:
                        self.calls += 1
                        usage = getattr(getattr(g, "message", None), "usage_metadata", None)
                        if usage:
                            self.prompt_tokens += int(usage.get("input_tokens") or 0)
                            self.completion_tokens += int(usage.get("output_tokens") or 0)
                            metered = True
                if not metered:
                    usage = (response.llm_output or {}).get("token_usage") or {}
                    if usage:
                        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                        self.completion_tokens += int(usage.get("completion_tokens") or 0)
                    else:
                        self.unmetered += sum(len(g) for g in response.generations)

        def on_llm_error(self, error, **kwargs):
            with self.lock:
                self.llm_errors += 1

        def result(self) -> dict:
            return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens, "llm_errors": self.llm_errors,
                    "unmetered_calls": self.unmetered}

    llm = ChatOpenAI(base_url=url + "/v1", api_key="EMPTY", model=job.get("model") or "local", temperature=0,
                     max_tokens=job.get("max_tokens", 384), timeout=job.get("request_timeout", 600),
                     custom_get_token_ids=server_token_ids)

    def docs_of(items: list[dict]) -> list[Document]:
        return [Document(page_content=d["text"], metadata=d.get("metadata") or {}) for d in items]

    def run_one(run, label: str) -> dict:
        usage = Usage()
        t0 = time.perf_counter()
        error = None
        out = None
        try:
            out = run({"callbacks": [usage]})
        except Exception as e:  # noqa: BLE001 - every failure is a result here
            error = f"{type(e).__name__}: {str(e)[:300]}"
        seconds = time.perf_counter() - t0
        text = (out or {}).get("output_text") if isinstance(out, dict) else None
        print(f"[langchain] {label}: {seconds:.1f} s, {usage.calls} calls" + (f", ERROR {error}" if error else ""),
              file=sys.stderr, flush=True)
        return {**usage.result(), "seconds": seconds, "error": error, "answer": (text or "")[:600]}

    t_import = time.perf_counter()  # imports above are not timed; building the chain is
    results: dict = {"versions": _versions(), "mode": job["mode"], "model_request": job.get("model"),
                     "max_tokens": job.get("max_tokens", 384)}
    if job["mode"] == "qa":
        chain_type = job["chain"]
        chain = load_qa_chain(llm, chain_type=chain_type)
        runs = []
        for i, item in enumerate(job["questions"], 1):
            docs = docs_of(item["docs"])
            payload = {"input_documents": docs, "question": item["question"]}
            r = run_one(lambda config, _p=payload: chain.invoke(_p, config=config), f"{chain_type} q{i}")
            r["question"] = item["question"]
            runs.append(r)
        results.update({"chain": chain_type, "runs": runs})
    elif job["mode"] == "summarize":
        chain = load_summarize_chain(llm, chain_type="map_reduce")
        docs = docs_of(job["docs"])
        runs = {}
        for mode in job.get("modes", ["sync"]):
            if mode == "sync":
                runs[mode] = run_one(lambda config: chain.invoke({"input_documents": docs}, config=config),
                                     "summarize map_reduce (invoke)")
            elif mode == "async":
                runs[mode] = run_one(lambda config: asyncio.run(chain.ainvoke({"input_documents": docs},
                                                                                config=config)),
                                     "summarize map_reduce (ainvoke)")
        results.update({"chain": "map_reduce", "token_max": 3000, "docs": len(docs), "runs": runs})
    else:
        print(f"unknown mode {job['mode']!r}", file=sys.stderr)
        return 2
    results["worker_seconds"] = time.perf_counter() - t_import
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
