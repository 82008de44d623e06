"""Query latency alone and during a running ingestion, without ("before") and with ("after") the thread budget.

One run, one machine, the same questions and collection in every configuration:

- before: the LLM runs at a fixed thread count equal to the cores (no budget), and the ingestion in the
  other process does not know about questions (its leases live in a private folder nobody reads);
- after: the thread budget (src/ragqa/threads.py) picks the LLM's threads per call and the ingestion pauses
  at its next slice while a question is answered.

Each configuration asks the same N questions one after another (chain `stuff`, k=3, `--max-tokens` tokens) and
records per-question latency; "during ingestion" keeps a `ragqa ingest` CLI process running the whole time
(restarted on a fresh collection whenever it finishes) and records its pages/s. Output: a table and
`bench/results/threads.json` with p50/p95 per configuration and the ratios after/before.

    RAGQA_DATA=../shared/data .venv/bin/python bench/threads.py [--model smollm2-135m] [--questions 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
QUESTIONS = [
    "How many employees did NIKE have as of May 31, 2023?",
    "What were NIKE's total revenues in fiscal 2023?",
    "Where is NIKE's world headquarters located?",
    "Who is NIKE's chief executive officer?",
    "What does NIKE say about foreign currency exchange risk?",
    "How much did NIKE spend on advertising and promotion?",
    "What are the main risks NIKE lists for its supply chain?",
    "How many retail stores does NIKE operate?",
]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class Ingester:
    """Keeps `ragqa ingest` running in another process until stopped; counts pages ingested per second."""

    def __init__(self, files: list[Path], env: dict):
        self.files, self.env = files, env
        self.stop = threading.Event()
        self.pages = 0
        self.seconds = 0.0
        self.paused = 0.0
        self.runs = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.is_set():
            home = tempfile.mkdtemp(prefix="ragqa-bench-ingest-")
            t0 = time.perf_counter()
            self.proc = subprocess.Popen([sys.executable, "-m", "ragqa", "--home", home, "ingest", "--json",
                                          *map(str, self.files)], env=self.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
            out, _ = self.proc.communicate()
            if self.stop.is_set() and self.proc.returncode != 0:
                return
            report = json.loads(out)
            self.seconds += time.perf_counter() - t0
            self.pages += sum(f.get("pages", 0) for f in report["files"])
            self.paused += report["stages"].get("paused", 0.0)
            self.runs += 1

    def __enter__(self):
        self.thread.start()
        time.sleep(8)  # past the import and the model load: embedding is running
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.thread.join(timeout=60)


def run(args) -> dict:
    from ragqa import backends
    from ragqa.collection import Collection
    from ragqa.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="ragqa-bench-threads-"))
    cache = Path(os.environ.get("RAGQA_CACHE_DIR", Path.home() / ".cache" / "ragqa"))
    nke = DATA / "pdfs" / "long" / "nke-10k-2023.pdf"
    ingest_files = sorted((DATA / "pdfs" / "long").glob("*.pdf"))
    base = Settings(home=work, threads=args.threads, cache_dir=cache)
    coll = Collection.open("nke", base, create=True)
    coll.ingest([nke])
    results = {}
    private_leases = Path(tempfile.mkdtemp(prefix="ragqa-bench-leases-"))
    for label, during in (("alone", False), ("during ingestion", True)):
        for policy in ("before", "after"):
            llm_cfg = base.llm.model_copy(update={"model": args.model, "max_tokens": args.max_tokens,
                                                  "threads": args.threads if policy == "before" else None})
            settings = base.model_copy(update={"llm": llm_cfg})
            backends._llms.clear()
            coll.settings = settings
            llm = backends.llm(settings)
            llm.complete([{"role": "user", "content": "hi"}], max_tokens=1)  # load + warm, untimed
            env = {**os.environ, "RAGQA_THREADS": str(args.threads), "RAGQA_CACHE_DIR": str(cache)}
            if policy == "before":  # its leases go where nobody looks: no budget
                env["RAGQA_CACHE_DIR"] = str(private_leases)
                (private_leases / "models").exists() or (private_leases / "models").symlink_to(cache / "models")
            latencies, threads_used = [], []
            ctx = Ingester(ingest_files, env) if during else None
            if ctx:
                ctx.__enter__()
            try:
                for q in QUESTIONS[: args.questions]:
                    t0 = time.perf_counter()
                    coll.ask(q, chain="stuff", k=3)
                    latencies.append(time.perf_counter() - t0)
                    threads_used.append(llm.threads)
                    print(f"  {label:17s} {policy:6s} {latencies[-1]:7.2f}s  llm threads {llm.threads}", flush=True)
            finally:
                if ctx:
                    ctx.__exit__(None, None, None)
            row = {"p50_s": round(statistics.median(latencies), 2), "p95_s": round(percentile(latencies, 0.95), 2),
                   "mean_s": round(statistics.mean(latencies), 2), "latencies_s": [round(x, 2) for x in latencies],
                   "llm_threads": threads_used}
            if ctx:
                row["ingest_pages_per_s"] = round(ctx.pages / ctx.seconds, 2) if ctx.seconds else None
                row["ingest_runs_completed"] = ctx.runs
                row["ingest_paused_s"] = round(ctx.paused, 1)
            results.setdefault(label, {})[policy] = row
    for row in results.values():
        row["p50_ratio_after_over_before"] = round(row["after"]["p50_s"] / row["before"]["p50_s"], 3)
        row["p95_ratio_after_over_before"] = round(row["after"]["p95_s"] / row["before"]["p95_s"], 3)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "threads.json"))
    args = ap.parse_args()
    results = run(args)
    print(f"\n{'':18s}{'before p50':>11s}{'p95':>8s}{'after p50':>11s}{'p95':>8s}{'p95 after/before':>18s}")
    for label, row in results.items():
        print(f"{label:18s}{row['before']['p50_s']:11.2f}{row['before']['p95_s']:8.2f}{row['after']['p50_s']:11.2f}"
              f"{row['after']['p95_s']:8.2f}{row['p95_ratio_after_over_before']:18.3f}")
    out = {"machine": machine_info(("llama_cpp_python", "onnxruntime")), "args": vars(args), "results": results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
