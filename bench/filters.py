"""Filtered retrieval against a collection that holds only the allowed documents: is the recall the same?

A QA set's paragraphs are ingested twice: all of them into one collection, each tagged with `half=a|b` by its
article (SQuAD's titles, alternating; a HotpotQA paragraph by its position), and only the `a` half into a
second collection. Every question whose gold paragraphs are all in `a` is searched in each mode, on the first
collection with the filter `meta half=a` and on the second without one; recall@k and MRR of both, and the
share of questions whose top 5 paragraphs are the same. Dense ranks the same by construction (exact over the
allowed vectors); BM25 keeps the whole collection's statistics, so lexical and the modes built on it may differ
a little.

    RAGQA_DATA=../shared/data .venv/bin/python bench/filters.py      # writes bench/results/filters_<set>.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

from ragqa.collection import Collection  # noqa: E402
from ragqa.eval.datasets import load_eval_set  # noqa: E402
from ragqa.eval.metrics import rank_paragraphs, summarise  # noqa: E402
from ragqa.filters import Filter  # noqa: E402
from ragqa.ingest import text_document  # noqa: E402
from ragqa.retrieve import MODES  # noqa: E402
from ragqa.settings import Settings  # noqa: E402
from ragqa.types import Text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
SETS = {"squad": "qa/squad_v1.1_dev_part_a.json", "hotpotqa": "qa/hotpotqa_train_sample100.json"}
DEPTH = 50


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(SETS))
    args = ap.parse_args()
    for name in args.sets.split(","):
        evalset = load_eval_set(DATA / SETS[name])
        titles = list(dict.fromkeys(p.title for p in evalset.paragraphs))
        half = {t: "ab"[i % 2] for i, t in enumerate(titles)}
        texts = [Text(p.title, p.text, source=f"{evalset.name}:{p.pid}", meta={"half": half[p.title]})
                 for p in evalset.paragraphs]
        pid_of = {text_document(t).doc_id: p.pid for t, p in zip(texts, evalset.paragraphs, strict=True)}
        in_a = {p.pid for p in evalset.paragraphs if half[p.title] == "a"}
        questions = [q for q in evalset.questions if q.gold and set(q.gold) <= in_a]
        with tempfile.TemporaryDirectory(prefix="ragqa-bench-filters-") as tmp:
            settings = Settings(home=Path(tmp))
            whole = Collection.open("whole", settings, create=True)
            whole.ingest_texts(texts)
            alone = Collection.open("alone", settings, create=True)
            alone.ingest_texts([t for t in texts if t.meta["half"] == "a"])
            within = Filter(meta=(("half", "a"),))
            for q in questions:  # every question embedded once before any is timed (the query cache keeps it)
                alone.search(q.question, k=1, mode="dense")
            results = {}
            for mode in MODES:
                runs = {}
                for label, coll, flt in (("filtered", whole, within), ("only_those_documents", alone, None)):
                    started, rankings = time.perf_counter(), []
                    for q in questions:
                        hits = coll.search(q.question, k=DEPTH, mode=mode, within=flt)
                        rankings.append(rank_paragraphs([pid_of.get(h.doc_id, h.doc_id) for h in hits]))
                    runs[label] = (rankings, round(1000 * (time.perf_counter() - started) / len(questions), 2))
                golds = [set(q.gold) for q in questions]
                same = sum(a[:5] == b[:5] for a, b in zip(runs["filtered"][0], runs["only_those_documents"][0],
                                                          strict=True)) / len(questions)
                results[mode] = {label: {**summarise(r, golds), "ms_per_query": ms} for label, (r, ms) in runs.items()}
                results[mode]["same_top5"] = round(same, 4)
                print(name, mode, results[mode], file=sys.stderr)
            whole.close()
            alone.close()
        out = {"benchmark": "filters", "set": evalset.name, "questions": len(questions),
               "paragraphs": len(evalset.paragraphs), "allowed_paragraphs": len(in_a), "filter": within.describe(),
               "machine": machine_info(("faiss-cpu", "sentence-transformers")), "results": results}
        path = ROOT / "bench" / "results" / f"filters_{evalset.name}.json"
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
