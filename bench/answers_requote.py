"""Re-applies ragqa's final quoting step to stored answers_vs_langchain rows, without the model.

Session 14 made stuff, map_reduce and refine hand back a short answer in its source's spelling
(`ragqa.chains.base.quote_sources`: "24-10" -> "24–10", as map_rerank already did). That step is a pure function
of a chain's final answer and its chunks, run after the chain's last LLM call, so every reply of the model is what
it was; what changes is only the text handed back. This script recomputes it exactly for the rows the pooled table
(bench/answers_vs_langchain_table.py) uses, instead of running the 1.5B again for hours:

1. per set, the chunks are rebuilt as bench/answers_vs_langchain.py builds them (a fresh collection, default
   settings, the same retrieval) and checked chunk id by chunk id against each row's stored retrieval; a question
   whose chunks differ is left out and counted;
2. each ragqa row's final answer (`raw`) goes through `quote_sources` with those chunks (at k=3 every chunk is in
   every stuff and refine prompt: a few hundred tokens of 7,792), then is cleaned and scored as before.

map_rerank rows are left alone (it quoted already; session 14's whole-word rule for a case-only match changes only
letter case, which scoring ignores), and so are LangChain's rows. Writes
bench/results/answers_vs_langchain_<set>_requoted.json, ragqa rows only (`skip_langchain`), dated now, so the pooled
table takes these rows and keeps LangChain's. A later live run of the chains replaces them in turn.

    RAGQA_DATA=../shared/data .venv/bin/python bench/answers_requote.py [--sets squad,hotpot,cmrc]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from answers_vs_langchain import retrieve, score, summary  # noqa: E402
from answers_vs_langchain_table import RESULTS, load, pool  # noqa: E402

from chains import machine_info, note, write_json_atomic  # noqa: E402

QUOTED_CHAINS = ("stuff", "map_reduce", "refine")


def winning_rows(runs: list[dict]) -> dict[str, dict]:
    """set -> {"file": QA file, "k": k, "chains": {chain: {qid: row}}, "chunks": {qid: [chunk ids]}}: the ragqa
    rows the pooled table shows, with the chunk ids of the run each row came from."""
    by_set: dict[str, dict] = {}
    retrieval = {}  # (path name, qid) -> chunk ids
    for run in runs:
        for r in run.get("retrieval", []):
            retrieval[(run["_path"].name, r["qid"])] = [c["chunk_id"] for c in r["chunks"]]
    origin = {}  # (set, chain, qid) -> path name of the run whose ragqa row wins (later runs win, as in pool())
    for run in runs:
        for chain, result in run.get("chains", {}).items():
            for row in (result.get("ragqa") or {}).get("rows", []):
                origin[(run["set"], chain, row["qid"])] = (run["_path"].name, run["file"], run["options"]["k"])
    for (set_name, chain), entry in pool(runs).items():
        if chain not in QUOTED_CHAINS:
            continue
        for qid, sides in entry["questions"].items():
            name, file, k = origin[(set_name, chain, qid)]
            target = by_set.setdefault(set_name, {"file": file, "k": k, "chains": {}, "chunks": {}})
            if k != target["k"]:
                raise SystemExit(f"{set_name}: runs with k={k} and k={target['k']}; requote one k at a time")
            target["chains"].setdefault(chain, {})[qid] = sides["ragqa"]
            target["chunks"][(chain, qid)] = retrieval[(name, qid)]
    return by_set


def requote_set(set_name: str, spec: dict) -> dict:
    from ragqa.chains.base import quote_sources
    from ragqa.eval.answers import clean_prediction
    from ragqa.eval.datasets import load_eval_set
    from ragqa.settings import Settings

    evalset = load_eval_set(spec["file"])
    wanted = {qid for rows in spec["chains"].values() for qid in rows}
    evalset.questions = [q for q in evalset.questions if q.qid in wanted]
    base = Settings()
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-requote-") as tmp_name:
        tmp = Path(tmp_name)
        settings = base.model_copy(update={"home": tmp / "home", "indexes_dir": tmp / "home" / "indexes",
                                           "kg_dir": tmp / "home" / "kg"})
        coll, items, ingest = retrieve(evalset, settings, spec["k"])
        coll.close()
    ingest.pop("pid_of", None)
    hits_of = {i["q"].qid: i["hits"] for i in items}
    question_of = {i["q"].qid: i["q"] for i in items}
    out_chains, mismatched, changed = {}, {}, {}
    for chain, rows in spec["chains"].items():
        new_rows = []
        for qid, row in rows.items():
            hits = hits_of[qid]
            if [h.chunk_id for h in hits] != spec["chunks"][(chain, qid)]:
                mismatched[chain] = mismatched.get(chain, 0) + 1
                continue
            raw = quote_sources(row["raw"], hits)
            prediction = "" if row.get("abstained") else clean_prediction(raw)
            em, f1 = score(prediction, question_of[qid].answers)
            if prediction != row["prediction"]:
                changed.setdefault(chain, []).append({"qid": qid, "before": row["prediction"], "after": prediction,
                                                      "em": [row["em"], em], "f1": [row["f1"], f1]})
            new_rows.append({**row, "raw": raw, "prediction": prediction, "em": em, "f1": f1,
                             "requoted_from": row["prediction"]})
        out_chains[chain] = {"ragqa": {"summary": summary(new_rows), "rows": new_rows},
                             "langchain": {"skipped": "requoted ragqa rows only; LangChain's rows are unchanged"}}
    return {"chains": out_chains, "ingest": ingest, "mismatched_chunks": mismatched,
            "changed": changed,
            "retrieval": [{"qid": i["q"].qid, "question": i["q"].question, "gold": list(i["q"].answers),
                           "chunks": [{"chunk_id": h.chunk_id, "chars": len(h.text)} for h in i["hits"]]}
                          for i in items]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="", help="comma-separated substrings of set names (default: every set)")
    args = ap.parse_args(argv)
    runs = sorted(load([p for p in sorted(RESULTS.glob("answers_vs_langchain_*.json"))
                        if not p.name.endswith("_requoted.json")]),  # requote what the chains answered
                  key=lambda r: r.get("machine", {}).get("date", ""))
    wanted = [s for s in args.sets.split(",") if s]
    for set_name, spec in winning_rows(runs).items():
        if wanted and not any(w in set_name for w in wanted):
            continue
        t0 = time.perf_counter()
        note(f"{set_name}: rebuilding the chunks of {len({q for r in spec['chains'].values() for q in r})} questions")
        res = requote_set(set_name, spec)
        out = {"benchmark": "answers_vs_langchain", "set": set_name, "file": spec["file"],
               "machine": machine_info(), "command": [Path(sys.executable).name, *sys.argv],
               "options": {"k": spec["k"], "chains": sorted(res["chains"]), "skip_langchain": True,
                           "requoted": "ragqa.chains.base.quote_sources over stored final answers (see this script)"},
               "wall_seconds": round(time.perf_counter() - t0, 1), **res}
        path = RESULTS / f"answers_vs_langchain_{set_name}_requoted.json"
        write_json_atomic(path, out)
        for chain, c in res["chains"].items():
            s = c["ragqa"]["summary"]
            note(f"{set_name} {chain}: n {s['n']}, EM {s.get('em')} F1 {s.get('f1')}, "
                 f"{len(res['changed'].get(chain, []))} answers changed, "
                 f"{res['mismatched_chunks'].get(chain, 0)} left out (chunks differ)")
        note(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
