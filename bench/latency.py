"""How long a user waits on CPU: the default chain against one bare stuff call, time to first token, the prompt
tokens llama.cpp's KV cache saves, and what `ragqa ask` spends before its first LLM call.

In one run, on one machine, with the embedded default model and the product's own prompts:
- the demo question over the demo 10-K, and a sample of SQuAD questions (the set's paragraphs ingested as
  documents): each question retrieved once, then answered by `auto` and by `stuff` on the same chunks, in turns
  (the order alternating), the model's KV cache emptied before each answer so that no answer reuses another's
  prompt; p50/p95 seconds per chain, the ratio auto/stuff, calls per question, and the time from the start of
  the answer to its first streamed token;
- prompt tokens evaluated per question with the prefix cache and without (RAGQA_LLM__PREFIX_CACHE=false), for
  map_rerank and auto on the same questions: what the cache keeps of each prompt is the part it shares with the
  previous one (the chat template and instructions before the chunk);
- `ragqa ask` in a fresh process until its first LLM call, the model's hash verdict removed (the first process
  after an install hashes the 1.1 GB file) and kept (every later process).

    .venv/bin/python bench/latency.py                      # writes bench/results/latency.json
    .venv/bin/python bench/latency.py --questions 10 --prefix-questions 4 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

from ragqa import backends
from ragqa.chains import Budget, Prompts, run_chain
from ragqa.collection import Collection
from ragqa.eval.datasets import load_eval_set
from ragqa.eval.retrieval import texts_of
from ragqa.llm.llamacpp import LlamaCppLLM
from ragqa.llm.registry import VERDICTS
from ragqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
DEMO_PDF = ROOT / "examples" / "nke-10k-2023.pdf"
DEMO_QUESTION = "How many employees did NIKE have as of May 31, 2023?"
MODEL = "qwen2.5-coder-1.5b"

# Runs `ragqa ask` until its first LLM call, then prints the seconds since the interpreter started and exits.
_FIRST_CALL = r"""
import os, sys, time
started = time.perf_counter()
import ragqa.llm.llamacpp as L
def first_call(self, *a, **k):
    print(f"FIRST_CALL {time.perf_counter() - started:.3f}", flush=True)
    os._exit(0)
L.LlamaCppLLM.complete = L.LlamaCppLLM.stream = first_call
from ragqa.cli.main import main
sys.argv = ["ragqa", "ask", sys.argv[1], "--collection", "demo", "--no-stream"]
main()
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else 0.0


def timed_answer(chain: str, question: str, hits, llm: LlamaCppLLM, budget: Budget, prompts: Prompts) -> dict:
    llm.llama.reset()  # an empty KV cache: no answer reuses the prompt of the one before
    first: list[float] = []
    started = time.perf_counter()
    answer = run_chain(chain, question, hits, llm, budget=budget, prompts=prompts,
                       on_token=lambda _: first or first.append(time.perf_counter() - started))
    seconds = time.perf_counter() - started
    t = answer.trace.totals()
    return {"seconds": round(seconds, 3), "ttft": round(first[0], 3) if first else None, "calls": t["calls"],
            "prompt_tokens": t["prompt_tokens"], "evaluated": t["prompt_tokens"] - t["cached_tokens"],
            "chain_used": answer.chain, "answer": answer.answer[:200]}


def summary(rows: list[dict]) -> dict:
    seconds = [r["seconds"] for r in rows]
    ttft = [r["ttft"] for r in rows if r["ttft"] is not None]
    return {"n": len(rows), "p50_s": pct(seconds, 0.5), "p95_s": pct(seconds, 0.95),
            "ttft_p50_s": pct(ttft, 0.5), "ttft_p95_s": pct(ttft, 0.95),
            "calls_per_q": round(statistics.mean(r["calls"] for r in rows), 2),
            "prompt_tokens_per_q": round(statistics.mean(r["prompt_tokens"] for r in rows), 1),
            "evaluated_per_q": round(statistics.mean(r["evaluated"] for r in rows), 1)}


def compare(questions: list[tuple[str, list]], llm, budget, prompts, repeats: int) -> dict:
    rows: dict[str, list[dict]] = {"auto": [], "stuff": []}
    for i, (question, hits) in enumerate(questions):
        for r in range(repeats):
            order = ("auto", "stuff") if (i + r) % 2 == 0 else ("stuff", "auto")
            for chain in order:
                rows[chain].append({"question": question, **timed_answer(chain, question, hits, llm, budget, prompts)})
        print(f"  {i + 1}/{len(questions)} auto {rows['auto'][-1]['seconds']}s stuff {rows['stuff'][-1]['seconds']}s",
              file=sys.stderr)
    out = {chain: summary(r) for chain, r in rows.items()}
    out["auto_over_stuff_p50"] = round(out["auto"]["p50_s"] / out["stuff"]["p50_s"], 2)
    out["rows"] = rows
    return out


def prefix_cache(questions: list[tuple[str, list]], llm: LlamaCppLLM, budget, prompts) -> dict:
    out = {}
    for chain in ("map_rerank", "auto"):
        per = {}
        for enabled in (True, False):
            llm.prefix_cache = enabled
            rows = [timed_answer(chain, q, hits, llm, budget, prompts) for q, hits in questions]
            per["with" if enabled else "without"] = summary(rows)
        llm.prefix_cache = True
        per["evaluated_saved"] = round(1 - per["with"]["evaluated_per_q"] / per["without"]["evaluated_per_q"], 3)
        out[chain] = per
    return out


def startup(home: Path, cache_dir: Path, runs: int) -> dict:
    env = {**os.environ, "RAGQA_HOME": str(home)}
    verdicts = cache_dir / "models" / VERDICTS

    def once() -> float:
        out = subprocess.run([sys.executable, "-c", _FIRST_CALL, DEMO_QUESTION], env=env, capture_output=True,
                             text=True, check=True).stdout
        return float(next(line for line in out.splitlines() if line.startswith("FIRST_CALL")).split()[1])

    hashed = []
    for _ in range(runs):
        verdicts.unlink(missing_ok=True)  # as every process did before verdicts were kept: hash the whole file
        hashed.append(once())
    kept = [once() for _ in range(runs)]
    return {"runs": runs, "hash_every_process_s": statistics.median(hashed), "verdict_kept_s": statistics.median(kept),
            "all": {"hash_every_process": hashed, "verdict_kept": kept}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=50, help="SQuAD questions (a seeded sample)")
    ap.add_argument("--prefix-questions", type=int, default=10, help="of those, answered with and without the cache")
    ap.add_argument("--repeats", type=int, default=3, help="times the demo question is answered by each chain")
    ap.add_argument("--startup-runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latency.json")
    args = ap.parse_args()

    squad = load_eval_set(DATA / "qa" / "squad_v1.1_dev_part_a.json", None, offset=2500, sample=args.questions,
                          seed=6)
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-latency-") as tmp:
        settings = Settings(home=Path(tmp), llm={"model": MODEL})
        demo = Collection.open("demo", settings, create=True)
        demo.ingest([DEMO_PDF])
        squad_coll = Collection.open("squad", settings, create=True)
        squad_coll.ingest_texts(texts_of(squad))
        llm = backends.llm(settings)
        budget, prompts = Budget.for_llm(llm, settings.llm.max_tokens), Prompts()

        def retrieved(coll: Collection, question: str) -> list:
            return coll.retriever.passages(coll.search(question, k=settings.k))

        demo_q = [(DEMO_QUESTION, retrieved(demo, DEMO_QUESTION))]
        squad_q = [(q.question, retrieved(squad_coll, q.question)) for q in squad.questions]
        print("demo question", file=sys.stderr)
        result = {"benchmark": "latency", "model": MODEL, "k": settings.k,
                  "machine": machine_info(("llama-cpp-python", "torch", "sentence-transformers"))}
        result["demo"] = compare(demo_q, llm, budget, prompts, args.repeats)
        print(f"SQuAD {len(squad_q)} questions (--offset 2500 --sample {args.questions} --seed 6)", file=sys.stderr)
        result["squad"] = {"selection": {"offset": 2500, "sample": args.questions, "seed": 6},
                           **compare(squad_q, llm, budget, prompts, 1)}
        print("prefix cache", file=sys.stderr)
        result["prefix_cache"] = {"questions": args.prefix_questions,
                                  **prefix_cache(squad_q[:args.prefix_questions], llm, budget, prompts)}
        demo.close()
        squad_coll.close()
        print("start-up of ragqa ask", file=sys.stderr)
        result["startup"] = startup(Path(tmp), settings.cache_dir, args.startup_runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k in ("demo", "squad")} | {"prefix": result["prefix_cache"],
                      "startup": result["startup"]}, default=str)[:3000])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
