"""Does the LLM triple extractor find MuSiQue's bridges where the fast extractor does not? An A/B on a slice.

MuSiQue's bridges are answer strings (a year, a lower-case phrase, "the Mississippi River delta") that the fast
extractor's capitalised names miss. The LLM extractor reads every chunk, so on a CPU it costs ~11 s a paragraph
with the 1.5B: the whole 1,890-paragraph corpus is ~6 hours. This script therefore takes the first N questions of
the MuSiQue file with *their own* paragraphs only (MuSiQue's distractor setting: 20 per question, deduplicated),
writes them as a MuSiQue file in a temporary folder, and runs the same `ragqa eval` twice on it, with
`RAGQA_GRAPH_EXTRACTOR=fast` and `=llm`, each in a fresh collection. Same embedder, same chunks, same questions;
only the graph differs. A GPU (vLLM) runs the whole corpus with the command in docs/retrieval.md.

    RAGQA_DATA=../shared/data RAGQA_LLM__MODEL=qwen2.5-coder-1.5b .venv/bin/python bench/graph_extractor_ab.py \
        --questions 12 --out bench/results/graph_extractor_ab_musique12_s17.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from machine import machine_info  # noqa: E402

DATA = Path(os.environ.get("RAGQA_DATA", ROOT.parent / "shared" / "data"))
MODES = "hybrid,graph,auto"


def subset(src: Path, n: int, out: Path) -> int:
    """The first n questions, no corpus file beside them: the loader takes each question's own paragraphs."""
    questions = json.loads(src.read_text())[:n]
    out.write_text(json.dumps(questions))
    return len({(p["title"], p["paragraph_text"]) for q in questions for p in q["paragraphs"]})


def cached_replies() -> int | None:
    """Triples already in the LLM extractor's cache: a re-run reads them instead of asking the model, so its
    wall time is not the extraction's (the JSON records this)."""
    import sqlite3

    from ragqa.settings import Settings

    path = Settings().cache_dir / "graph-llm.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT count(*) FROM replies").fetchone()[0]
    except sqlite3.Error:
        return None


def run_eval(file: Path, extractor: str, home: Path, out: Path) -> dict:
    env = dict(os.environ, RAGQA_HOME=str(home), RAGQA_GRAPH_EXTRACTOR=extractor)
    before = cached_replies() if extractor == "llm" else None
    t0 = time.perf_counter()
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ragqa"), "eval", str(file), "--modes", MODES,
                           "--json", str(out)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:], "seconds": wall}
    result = json.loads(out.read_text())
    result["wall_seconds"] = wall
    if extractor == "llm":
        result["llm_cache_replies_before"], result["llm_cache_replies_after"] = before, cached_replies()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=12, help="the first N MuSiQue questions (default 12)")
    ap.add_argument("--file", type=Path, default=DATA / "qa" / "musique_train_sample100.json")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "graph_extractor_ab.json")
    args = ap.parse_args(argv)
    if not args.file.exists():
        print(f"no MuSiQue file at {args.file} (set RAGQA_DATA)", file=sys.stderr)
        return 2
    results = {"benchmark": "graph_extractor_ab", "machine": machine_info(("ragqa", "llama-cpp-python")),
               "llm_model": os.environ.get("RAGQA_LLM__MODEL", "(settings default)"), "questions": args.questions,
               "modes": MODES.split(",")}
    with tempfile.TemporaryDirectory(prefix="ragqa-ab-") as tmp:
        tmp = Path(tmp)
        file = tmp / f"musique_first{args.questions}.json"
        results["paragraphs"] = subset(args.file, args.questions, file)
        print(f"[bench] {args.questions} questions, {results['paragraphs']} paragraphs", file=sys.stderr)
        for extractor in ("fast", "llm"):
            print(f"[bench] ragqa eval with RAGQA_GRAPH_EXTRACTOR={extractor}", file=sys.stderr, flush=True)
            results[extractor] = run_eval(file, extractor, tmp / extractor, tmp / f"{extractor}.json")
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"{'extractor':<9} {'mode':<7} {'R@1':>6} {'R@2':>6} {'R@5':>6} {'R@10':>6} {'all@10':>7} {'MRR':>6}")
    for extractor in ("fast", "llm"):
        r = results[extractor]
        if "error" in r:
            print(f"{extractor}: failed: {r['error']}")
            continue
        for mode in results["modes"]:
            m = r[mode]
            print(f"{extractor:<9} {mode:<7} {m['recall@1']:>6.3f} {m['recall@2']:>6.3f} {m['recall@5']:>6.3f} "
                  f"{m['recall@10']:>6.3f} {m['all_gold@10']:>7.3f} {m['mrr']:>6.3f}")
        print(f"{extractor}: {r['wall_seconds']:.0f} s in all")
    print(f"results: {args.out}")
    return 1 if any("error" in results[e] for e in ("fast", "llm")) else 0


if __name__ == "__main__":
    sys.exit(main())
