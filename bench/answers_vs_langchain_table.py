"""One table of ragqa against LangChain from the result files of bench/answers_vs_langchain.py.

The comparison ran in pieces (a few chains or questions at a time: each is a fresh run of the 1.5B on 2 cores),
so a set's numbers are spread over several files. This pools them: per set, chain and side, each question's row
comes from the last file given that holds it, so a later re-run (a changed prompt) replaces an earlier one
question by question; a ragqa-only re-run (`--skip-langchain`, the same chunks) keeps LangChain's rows. EM, F1, crashes, calls and
seconds per question are then recomputed over the pooled questions, for both sides alike.

    .venv/bin/python bench/answers_vs_langchain_table.py bench/results/answers_vs_langchain_squad30_run1.json \\
        bench/results/answers_vs_langchain_squad30_stuff.json ...   # later files win

With no files: every bench/results/answers_vs_langchain_*.json, oldest `machine.date` first.
Prints a markdown table; `--json OUT` also writes the pooled numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIDES = ("ragqa", "langchain")
CHAIN_ORDER = ("stuff", "map_reduce", "refine", "map_rerank")


def load(paths: list[Path]) -> list[dict]:
    runs = [json.loads(p.read_text()) | {"_path": p} for p in paths]
    return [r for r in runs if r.get("benchmark") == "answers_vs_langchain"]


def pool(runs: list[dict]) -> dict[tuple[str, str], dict]:
    """(set, chain) -> {"questions": {qid: {side: row}}, "files": [...]}; later runs replace earlier rows, side by
    side: a `--skip-langchain` re-run (a changed ragqa prompt, the same chunks and model) replaces ragqa's rows and
    keeps LangChain's, whose code and inputs did not change. A question counts once both sides have a row."""
    pooled: dict[tuple[str, str], dict] = {}
    for run in runs:
        for chain, result in run.get("chains", {}).items():
            rows = {side: {r["qid"]: r for r in (result.get(side) or {}).get("rows", [])} for side in SIDES}
            if not any(rows.values()):
                continue
            entry = pooled.setdefault((run["set"], chain), {"questions": {}, "files": []})
            for side in SIDES:
                for qid, row in rows[side].items():
                    entry["questions"].setdefault(qid, {})[side] = row
            entry["files"].append(run["_path"].name)
    for entry in pooled.values():
        entry["questions"] = {q: sides for q, sides in entry["questions"].items() if len(sides) == len(SIDES)}
    return {key: entry for key, entry in pooled.items() if entry["questions"]}


def summarise(rows: list[dict]) -> dict:
    n = len(rows)

    def mean(key: str) -> float:
        return sum(float(r.get(key) or 0) for r in rows) / n

    return {"n": n, "em": round(100 * mean("em"), 1), "f1": round(100 * mean("f1"), 1),
            "errors": sum(1 for r in rows if r.get("error")), "calls_per_q": round(mean("calls"), 1),
            "seconds_per_q": round(mean("seconds"), 1)}


def table(pooled: dict[tuple[str, str], dict]) -> tuple[str, list[dict]]:
    lines = ["| set | chain | questions | ragqa EM / F1 | LangChain EM / F1 | crashes (ragqa / LC) | calls/q "
             "(ragqa / LC) | s/q (ragqa / LC) | ragqa >= LC |",
             "|---|---|---|---|---|---|---|---|---|"]
    out = []
    order = {c: i for i, c in enumerate(CHAIN_ORDER)}
    for (set_name, chain) in sorted(pooled, key=lambda k: (k[0], order.get(k[1], 9))):
        questions = pooled[(set_name, chain)]["questions"].values()
        s = {side: summarise([q[side] for q in questions]) for side in SIDES}
        r, lc = s["ragqa"], s["langchain"]
        em_ge, f1_ge = r["em"] >= lc["em"], r["f1"] >= lc["f1"]
        verdict = "yes" if em_ge and f1_ge else ("EM only" if em_ge else ("F1 only" if f1_ge else "no"))
        lines.append(f"| {set_name} | {chain} | {r['n']} | {r['em']} / {r['f1']} | {lc['em']} / {lc['f1']} | "
                     f"{r['errors']} / {lc['errors']} | {r['calls_per_q']} / {lc['calls_per_q']} | "
                     f"{r['seconds_per_q']} / {lc['seconds_per_q']} | {verdict} |")
        out.append({"set": set_name, "chain": chain, "files": pooled[(set_name, chain)]["files"], **s,
                    "ragqa_ge_langchain": {"em": em_ge, "f1": f1_ge}})
    return "\n".join(lines), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="result files, later ones win (default: all)")
    parser.add_argument("--json", type=Path, help="also write the pooled numbers here")
    args = parser.parse_args(argv)
    if args.files:
        missing = [str(p) for p in args.files if not p.is_file()]
        if missing:
            print(f"bench/answers_vs_langchain_table.py: no such file: {', '.join(missing)}", file=sys.stderr)
            return 2
        runs = load(args.files)
    else:
        runs = sorted(load(sorted(RESULTS.glob("answers_vs_langchain_*.json"))),
                      key=lambda r: r.get("machine", {}).get("date", ""))
    if not runs:
        print("bench/answers_vs_langchain_table.py: no answers_vs_langchain result files", file=sys.stderr)
        return 2
    text, rows = table(pool(runs))
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
