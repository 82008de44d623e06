"""Answer quality: ragqa's four chains vs LangChain's `load_qa_chain`, on the same chunks and the same model.

For one shared QA file (`--set`, relative to $RAGQA_DATA; SQuAD v1.1 / CMRC, HotpotQA or MuSiQue as
`ragqa eval` reads them):

1. The paragraphs (`ragqa.eval.retrieval.texts_of`) are ingested into a fresh collection in a temporary
   RAGQA_HOME with the default settings (`Collection.ingest_texts`), and each of the first `--limit` questions is
   retrieved once (`collection.search(question, k)`, the collection's default retrieval mode). Both libraries
   answer from exactly these chunks, in this order.
2. `python -m llama_cpp.server` on the GGUF of `--model` (registry name or path; default qwen2.5-coder-1.5b),
   127.0.0.1, `--n-ctx`, `--server-threads`, seed 0, behind bench/chains.py's counting proxy (which also maps
   ChatOpenAI's `max_completion_tokens` to `max_tokens`). Per chain (stuff, map_reduce, refine, map_rerank):
   - ragqa: `run_chain(chain, question, hits, OpenAICompatLLM(proxy + "/v1"), budget=Budget.for_llm(llm,
     max_tokens), prompts=short_answer_prompts(Prompts()), abstain_below=Settings().abstain_below)`, i.e. what
     `ragqa eval --answers` runs, on the openai backend;
   - LangChain: `load_qa_chain(ChatOpenAI(base_url=proxy + "/v1", temperature=0, max_tokens=max_tokens),
     chain_type=chain)` on the same chunk texts (bench/langchain_chains.py in .venv-bench, one worker per chain),
     with LangChain's own default prompts.
   The server's prompt cache is flushed between the two sides.
3. The short-answer instruction (the sets score short SQuAD-style answers), `--instruction`:
   - `prompts` (default): ragqa gets it through `short_answer_prompts` (after the question in its stuff prompt,
     which then drops its request for [n] markers, and after the question in its combine and refine prompts: how
     `ragqa eval --answers` asks); LangChain, whose prompts cannot take it without rewriting them,
     gets the very same sentence (`ragqa.eval.answers.short_instruction(language)`) appended to the question text, so it appears in every
     one of its prompts that carries `{question}` (all steps of all four chain types).
   - `question`: both sides get the sentence appended to the question text and their own default prompts
     (`Prompts()` for ragqa), the most symmetric setting.
   Retrieval always uses the bare question.
4. Scores, the same for both: `clean_prediction` (no citation markers, first line, no trailing full stop), then
   exact match and F1 as `best_over` the gold answers (SQuAD's normalisation, CMRC's character F1 for Chinese),
   as percentages. A LangChain exception (map_rerank's output parser, a rejected context...) or a ragqa one
   scores 0 for that question and is counted in `errors`; it never stops the run. A worker that fails
   altogether is recorded as the chain's `error`. Also per question and side: LLM calls, prompt/completion
   tokens, wall seconds of the chain (retrieval excluded, measured apart), and the proxy's own counts per side.
   For ragqa also abstentions and `cited_gold` (a cited source is a gold paragraph); `gold_in_chunks` is the
   share of questions whose chunks hold a gold paragraph (the ceiling both sides share).

Results: a table on standard output and bench/results/answers_vs_langchain_<set>.json (`--out`), rewritten after
every chain so that a stopped run keeps what it measured.

    RAGQA_DATA=../shared/data .venv/bin/python bench/answers_vs_langchain.py --set qa/squad_v1.1_dev_part_a \\
        --limit 100 -k 5 [--chains stuff,map_reduce,refine,map_rerank] [--model qwen2.5-coder-1.5b]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chains import (  # noqa: E402  (bench/chains.py: the server, the proxy and the LangChain worker)
    BENCH_PYTHON,
    DATA,
    ROOT,
    WORKER_VERSIONS,
    LlamaServer,
    Proxy,
    _sigterm,
    fmt,
    machine_info,
    mean,
    note,
    run_worker,
    write_json_atomic,
)

CHAINS = ("stuff", "map_reduce", "refine", "map_rerank")
DEFAULT_SET = "qa/squad_v1.1_dev_part_a.json"


def fail(message: str, code: int = 2) -> None:
    print(f"bench/answers_vs_langchain.py: {message}", file=sys.stderr)
    sys.exit(code)


def resolve_set(name: str) -> Path:
    path = Path(name)
    if not path.is_absolute():
        path = DATA / path
    if not path.suffix:
        path = path.with_suffix(".json")
    if not path.is_file():
        fail(f"no QA file at {path} (set RAGQA_DATA to the shared data folder, or pass --set PATH)")
    return path


def score(prediction: str, golds) -> tuple[float, float]:
    from ragqa.eval.answers import best_over, exact_match, f1

    return best_over(exact_match, prediction, golds), best_over(f1, prediction, golds)


def summary(rows: list[dict]) -> dict:
    """Percentages for em/f1 (and abstained/cited_gold where present); means per question for the costs."""
    n = len(rows)
    out: dict = {"n": n, "errors": sum(1 for r in rows if r.get("error"))}
    if not n:
        return out
    out["em"] = round(100 * sum(r["em"] for r in rows) / n, 1)
    out["f1"] = round(100 * sum(r["f1"] for r in rows) / n, 1)
    for key in ("abstained", "cited_gold"):
        if any(key in r for r in rows):
            out[key] = round(100 * sum(bool(r.get(key)) for r in rows) / n, 1)
    for key in ("calls", "prompt_tokens", "completion_tokens", "seconds"):
        values = [r[key] for r in rows if r.get(key) is not None]
        out[f"{key}_per_q"] = round(mean(values), 3) if values else None
    out["total_seconds"] = round(sum(r.get("seconds") or 0.0 for r in rows), 2)
    return out


def verdict(ragqa: dict, lc: dict) -> dict | None:
    """Does ragqa score at least LangChain's same chain type on EM and F1, with zero errors of its own?"""
    if "em" not in ragqa or "em" not in lc:
        return None
    return {"em_ge": ragqa["em"] >= lc["em"], "f1_ge": ragqa["f1"] >= lc["f1"],
            "ragqa_errors": ragqa["errors"], "langchain_errors": lc["errors"],
            "ok": ragqa["em"] >= lc["em"] and ragqa["f1"] >= lc["f1"] and ragqa["errors"] == 0}


# -- the collection and the questions' chunks --------------------------------------------------------------
def retrieve(evalset, settings, k: int) -> tuple[object, list[dict], dict]:
    from ragqa.collection import Collection
    from ragqa.eval.retrieval import texts_of
    from ragqa.ingest import text_document

    coll = Collection.open("answers", settings, create=True)
    texts = texts_of(evalset)
    pid_of = {text_document(t).doc_id: p.pid for t, p in zip(texts, evalset.paragraphs, strict=True)}
    note(f"ingesting {len(texts)} paragraphs into a fresh collection ({settings.embedder})")
    t0 = time.perf_counter()
    report = coll.ingest_texts(texts)
    ingest = {"paragraphs": len(texts), "chunks": coll.stats().get("chunks"), "seconds": time.perf_counter() - t0,
              "embedder": settings.embedder, "failed": [{"file": f.path, "reason": f.reason} for f in report.failed]}
    if report.failed:
        coll.close()
        fail(f"{len(report.failed)} paragraphs failed to ingest: {report.failed[0].reason}")
    items = []
    for q in evalset.questions:
        t0 = time.perf_counter()
        hits = coll.search(q.question, k=k)
        seconds = time.perf_counter() - t0
        pids = [pid_of.get(h.doc_id, h.doc_id) for h in hits]
        items.append({"q": q, "hits": hits, "pids": pids, "seconds": seconds, "gold_in_chunks": bool(set(pids) & set(q.gold))})
    return coll, items, {**ingest, "pid_of": pid_of}


# -- the two sides -------------------------------------------------------------------------------------------
def run_ragqa(chain: str, items: list[dict], llm, budget, prompts, suffix: str, abstain_below: int,
              pid_of: dict) -> list[dict]:
    from ragqa.chains import run_chain
    from ragqa.eval.answers import clean_prediction

    rows = []
    for i, item in enumerate(items, 1):
        q = item["q"]
        t0 = time.perf_counter()
        try:
            answer = run_chain(chain, q.question + suffix, item["hits"], llm, budget=budget, prompts=prompts,
                               abstain_below=abstain_below)
        except Exception as e:  # noqa: BLE001 - a ragqa crash is a result too (and fails the must-show)
            seconds = time.perf_counter() - t0
            rows.append({"qid": q.qid, "prediction": "", "raw": "", "em": 0.0, "f1": 0.0, "seconds": seconds,
                         "error": f"{type(e).__name__}: {str(e)[:300]}"})
            note(f"ragqa {chain} q{i}: ERROR {e}")
            continue
        seconds = time.perf_counter() - t0
        prediction = "" if answer.abstained else clean_prediction(answer.answer)
        em, f1 = score(prediction, q.answers)
        totals = answer.trace.totals()
        cited = {pid_of.get(s.doc_id, s.doc_id) for s in answer.sources}
        rows.append({"qid": q.qid, "prediction": prediction, "raw": answer.answer[:600], "em": em, "f1": f1,
                     "abstained": answer.abstained, "cited_gold": bool(cited & set(q.gold)),
                     "calls": totals["calls"], "prompt_tokens": totals["prompt_tokens"],
                     "completion_tokens": totals["completion_tokens"], "seconds": seconds, "error": None})
        note(f"ragqa {chain} q{i}: {seconds:.1f} s, {totals['calls']} calls, em {em:.0f} f1 {f1:.2f}")
    return rows


def run_langchain(chain: str, items: list[dict], url: str, model: str, suffix: str, args, tmp: Path) -> dict:
    from ragqa.eval.answers import clean_prediction

    job = {"mode": "qa", "url": url, "model": model, "max_tokens": args.max_tokens, "chain": chain,
           "request_timeout": args.request_timeout,
           "questions": [{"question": item["q"].question + suffix,
                          "docs": [{"text": h.text, "metadata": {"source": h.filename, "chunk_id": h.chunk_id,
                                                                 "doc_id": h.doc_id}} for h in item["hits"]]}
                         for item in items]}
    note(f"langchain {chain}: {len(items)} question(s) in {BENCH_PYTHON}")
    res = run_worker(job, tmp, args.langchain_timeout)
    if "runs" not in res:
        return {"error": res.get("error", "no result"), "stdout_tail": res.get("stdout_tail")}
    rows = []
    for item, r in zip(items, res["runs"], strict=False):
        q = item["q"]
        prediction = "" if r.get("error") else clean_prediction(r.get("answer") or "")
        em, f1 = score(prediction, q.answers)
        rows.append({"qid": q.qid, "prediction": prediction, "raw": r.get("answer") or "", "em": em, "f1": f1,
                     "calls": r.get("calls"), "prompt_tokens": r.get("prompt_tokens"),
                     "completion_tokens": r.get("completion_tokens"), "llm_errors": r.get("llm_errors"),
                     "seconds": r.get("seconds"), "error": r.get("error")})
    missing = len(items) - len(rows)
    return {"rows": rows, "versions": res.get("versions"), "worker_seconds": res.get("worker_seconds"),
            **({"error": f"worker returned {len(rows)} of {len(items)} answers"} if missing else {})}


# -- report --------------------------------------------------------------------------------------------------
def print_table(results: dict) -> None:
    o = results["options"]
    print(f"\n{results['set']}: {results['questions']} questions, k={o['k']}, {results['model']['name']}, "
          f"instruction={o['instruction']}, gold paragraph in the chunks for {fmt(results.get('gold_in_chunks'))}%")
    print(f"{'chain':<11} {'EM ragqa':>8} {'EM LC':>6} {'F1 ragqa':>8} {'F1 LC':>6} {'err r/LC':>8} "
          f"{'calls r/LC':>11} {'tok r/LC':>13} {'s/q r/LC':>12} {'wall r/LC':>13} {'>= LC':>5}")
    for name, c in results["chains"].items():
        a = c["ragqa"]["summary"]
        b = c["langchain"].get("summary") or {}
        v = c.get("verdict")
        tok_a = (a.get("prompt_tokens_per_q") or 0) + (a.get("completion_tokens_per_q") or 0)
        tok_b = ((b.get("prompt_tokens_per_q") or 0) + (b.get("completion_tokens_per_q") or 0)) if b else None
        err_b = b.get("errors") if b else ("skip" if c["langchain"].get("skipped") else "fail")
        print(f"{name:<11} {fmt(a.get('em')):>8} {fmt(b.get('em')):>6} {fmt(a.get('f1')):>8} {fmt(b.get('f1')):>6} "
              f"{a['errors']!s:>3}/{err_b!s:<4} {fmt(a.get('calls_per_q')):>5}/{fmt(b.get('calls_per_q')):<5} "
              f"{fmt(tok_a, '.0f'):>6}/{fmt(tok_b, '.0f'):<6} {fmt(a.get('seconds_per_q')):>5}/"
              f"{fmt(b.get('seconds_per_q')):<6} {fmt(a.get('total_seconds'), '.0f'):>6}/"
              f"{fmt(b.get('total_seconds'), '.0f'):<6} {('-' if v is None else 'yes' if v['ok'] else 'NO'):>5}")
        if c["langchain"].get("error"):
            print(f"            langchain: {c['langchain']['error']}")
        errors = sorted({r["error"].split(":")[0] for r in c["langchain"].get("rows", []) if r.get("error")})
        if errors:
            print(f"            langchain errors: {', '.join(errors)}")
        errors = sorted({r["error"].split(":")[0] for r in c["ragqa"]["rows"] if r.get("error")})
        if errors:
            print(f"            ragqa errors: {', '.join(errors)}")
    print("(EM/F1 in %; err = questions that raised; tok = prompt+completion tokens per question; s/q = chain "
          "seconds per question, retrieval excluded; wall = seconds for all questions)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default=DEFAULT_SET, help=f"QA file relative to $RAGQA_DATA, or a path (default "
                    f"{DEFAULT_SET})")
    ap.add_argument("--limit", type=int, default=100, help="the first N questions (the corpus stays whole)")
    ap.add_argument("--offset", type=int, default=0, help="skip the first N questions (to extend an earlier run)")
    ap.add_argument("-k", type=int, default=5, help="chunks retrieved per question")
    ap.add_argument("--chains", default=",".join(CHAINS), help="comma-separated, of " + ",".join(CHAINS))
    ap.add_argument("--model", default="qwen2.5-coder-1.5b", help="GGUF: registry name or path")
    ap.add_argument("--instruction", choices=("prompts", "question"), default="prompts",
                    help="where the short-answer sentence goes (see above)")
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--max-tokens", type=int, default=None, help="reply reserve, both libraries (default: "
                    "ragqa's llm.max_tokens setting)")
    ap.add_argument("--server-threads", type=int, default=2, help="llama_cpp.server threads")
    ap.add_argument("--skip-langchain", action="store_true", help="ragqa only")
    ap.add_argument("--request-timeout", type=float, default=600, help="seconds per HTTP request (both libraries)")
    ap.add_argument("--langchain-timeout", type=float, default=7200, help="seconds before a worker is stopped")
    ap.add_argument("--out", type=Path, help="JSON results (default bench/results/answers_vs_langchain_<set>.json)")
    args = ap.parse_args(argv)
    chains = [c.strip() for c in args.chains.split(",") if c.strip()]
    unknown = [c for c in chains if c not in CHAINS]
    if unknown or not chains:
        fail(f"unknown chain {unknown[0] if unknown else '(none)'}; known: {', '.join(CHAINS)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _sigterm)

    from ragqa.chains import Budget, Prompts
    from ragqa.eval.answers import short_answer_prompts, short_instruction
    from ragqa.eval.datasets import load_eval_set
    from ragqa.llm.openai_compat import OpenAICompatLLM
    from ragqa.llm.registry import gguf_path
    from ragqa.settings import Settings

    path = resolve_set(args.set)
    evalset = load_eval_set(path, args.limit, offset=args.offset)
    out_path = args.out or ROOT / "bench" / "results" / f"answers_vs_langchain_{path.stem}.json"
    base = Settings()
    if args.max_tokens is None:
        args.max_tokens = base.llm.max_tokens
    gguf = gguf_path(args.model, base.cache_dir / "models")  # where ragqa assembles split models
    short = short_instruction(evalset.language)
    if args.instruction == "prompts":
        ragqa_prompts, ragqa_suffix, lc_suffix = short_answer_prompts(Prompts(), evalset.language), "", short
    else:
        ragqa_prompts, ragqa_suffix, lc_suffix = Prompts(), short, short

    results: dict = {
        "benchmark": "answers_vs_langchain", "set": evalset.name, "file": str(path), "language": evalset.language,
        "questions": len(evalset.questions), "machine": machine_info(),
        "command": [Path(sys.executable).name, *sys.argv],
        "model": {"name": args.model, "gguf": str(gguf), "n_ctx": args.n_ctx, "max_tokens": args.max_tokens,
                  "server_threads": args.server_threads, "temperature": 0},
        "options": {"limit": args.limit, "offset": args.offset, "k": args.k, "chains": chains, "instruction": args.instruction,
                    "short_sentence": short.strip(), "retrieval": base.retrieval,
                    "abstain_below": base.abstain_below, "skip_langchain": args.skip_langchain},
        "chains": {}}
    status = 0
    t_run = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-answers-") as tmp_name:
        tmp = Path(tmp_name)
        settings = base.model_copy(update={"home": tmp / "home", "indexes_dir": tmp / "home" / "indexes",
                                           "kg_dir": tmp / "home" / "kg"})
        coll = server = proxy = None
        try:
            coll, items, ingest = retrieve(evalset, settings, args.k)
            pid_of = ingest.pop("pid_of")
            results["ingest"] = ingest
            results["gold_in_chunks"] = round(100 * sum(i["gold_in_chunks"] for i in items) / max(1, len(items)), 1)
            results["retrieval"] = [{"qid": i["q"].qid, "question": i["q"].question, "gold": list(i["q"].answers),
                                     "seconds": round(i["seconds"], 4), "gold_in_chunks": i["gold_in_chunks"],
                                     "chunks": [{"pid": p, "chunk_id": h.chunk_id, "score": round(h.score, 4),
                                                 "chars": len(h.text)} for p, h in zip(i["pids"], i["hits"],
                                                                                       strict=True)]}
                                    for i in items]
            coll.close()
            coll = None
            write_json_atomic(out_path, results)

            server = LlamaServer(gguf, n_ctx=args.n_ctx, threads=args.server_threads, log_dir=tmp, name="server")
            note(f"starting llama_cpp.server on {server.url} ({args.server_threads} threads, n_ctx {args.n_ctx})")
            server.wait_ready()
            proxy = Proxy([server.url])
            llm = OpenAICompatLLM(proxy.url + "/v1", context_window=args.n_ctx, timeout=args.request_timeout)
            # Untimed: warm the model, find the tokenize route and (for map_rerank) the server's JSON dialect once,
            # outside map_rerank's concurrent batch (see bench/chains.py).
            llm.complete([{"role": "user", "content": "Say hello."}], max_tokens=4)
            llm.count_tokens("hello")
            if "map_rerank" in chains:
                from ragqa.chains.map_rerank import SCHEMA

                llm.complete([{"role": "user", "content": "Reply with JSON."}], max_tokens=16, json_schema=SCHEMA)
            results["server"] = {"command": server.cmd, "model_id": llm.name,
                                 "json_style": getattr(llm, "_json_style", None)}
            budget = Budget.for_llm(llm, args.max_tokens)
            for chain in chains:
                server.flush()
                proxy.reset()
                note(f"ragqa {chain}: {len(items)} question(s)")
                rows = run_ragqa(chain, items, llm, budget, ragqa_prompts, ragqa_suffix, base.abstain_below, pid_of)
                ragqa = {"summary": summary(rows), "proxy": proxy.snapshot(), "rows": rows}
                if args.skip_langchain:
                    lc: dict = {"skipped": True}
                else:
                    server.flush()
                    proxy.reset()
                    lc = run_langchain(chain, items, proxy.url, llm.name, lc_suffix, args, tmp)
                    lc["proxy"] = proxy.snapshot()
                    if "rows" in lc:
                        lc["summary"] = summary(lc["rows"])
                    if lc.get("error"):
                        status = 1
                results["chains"][chain] = {"ragqa": ragqa, "langchain": lc,
                                            "verdict": verdict(ragqa["summary"], lc.get("summary") or {})}
                results["wall_seconds"] = round(time.perf_counter() - t_run, 1)
                write_json_atomic(out_path, results)
        finally:
            if proxy:
                proxy.close()
            if server:
                server.stop()
            if coll is not None:
                coll.close()
            results["wall_seconds"] = round(time.perf_counter() - t_run, 1)
            results["machine"]["load_average_at_end"] = list(os.getloadavg())
            results["machine"]["versions_langchain_side"] = WORKER_VERSIONS or None
            write_json_atomic(out_path, results)
    print_table(results)
    print(f"\nwall time {results['wall_seconds']:.0f} s; results: {out_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
