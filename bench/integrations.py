"""Retrieval through the LangChain and LlamaIndex integrations against `ragqa eval` on the same collection.

One collection per set, ingested once by `ragqa eval`'s own pipeline (`evaluate_retrieval`); recall@k, all_gold@10
and MRR are computed for each mode three ways: `Collection.search` (what `ragqa eval` reports), LangChain's
`RagqaRetriever.invoke` and LlamaIndex's `RagqaRetriever.retrieve`, each fetching the same 50 chunks and mapping
them to paragraphs the same way. The integrations must add no loss: the three rows agree exactly.

Per-query overhead: the same questions, k=5, through the three paths interleaved (each question asked once per
path, the path order rotating), so the ratio to `Collection.search` is measured in one run on one machine.

    RAGQA_DATA=../shared/data .venv/bin/python bench/integrations.py --set hotpotqa_train_sample100
    RAGQA_DATA=../shared/data .venv/bin/python bench/integrations.py --set squad_v1.1_dev_part_a --limit 500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llama_index.core.schema import QueryBundle
from machine import machine_info  # noqa: E402

from ragqa.eval.datasets import load_eval_set
from ragqa.eval.metrics import rank_paragraphs, summarise
from ragqa.eval.retrieval import CHUNK_DEPTH, evaluate_retrieval, texts_of
from ragqa.ingest import text_document
from ragqa.integrations import langchain as lc
from ragqa.integrations import llama_index as li
from ragqa.integrations.common import CollectionHandle
from ragqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
COLLECTION = "eval"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", default="hotpotqa_train_sample100")
    ap.add_argument("--limit", type=int, default=None, help="first N questions")
    ap.add_argument("--modes", default="auto,hybrid")
    ap.add_argument("--timed", type=int, default=200, help="questions in the overhead measurement")
    args = ap.parse_args()
    modes = args.modes.split(",")
    path = DATA / "qa" / f"{args.set}.json"
    evalset = load_eval_set(path, args.limit)
    pid_of = {text_document(t).doc_id: p.pid for t, p in zip(texts_of(evalset), evalset.paragraphs, strict=True)}
    golds = [set(q.gold) for q in evalset.questions]

    with tempfile.TemporaryDirectory(prefix="ragqa-bench-integrations-") as tmp:
        settings = Settings(home=Path(tmp))
        started = time.perf_counter()
        report = evaluate_retrieval(path, settings, modes=modes, limit=args.limit, collection=COLLECTION)
        ingest_and_eval = time.perf_counter() - started
        handle = CollectionHandle(COLLECTION, settings=settings)

        def langchain_ids(mode: str):
            retriever = lc.RagqaRetriever(collection=COLLECTION, settings=settings, retrieval=mode)
            return lambda q: [d.metadata["doc_id"] for d in retriever.invoke(q, k=CHUNK_DEPTH)]

        def llama_index_ids(mode: str):
            retriever = li.RagqaRetriever(COLLECTION, settings=settings, k=CHUNK_DEPTH, retrieval=mode)
            return lambda q: [n.node.metadata["doc_id"] for n in retriever.retrieve(QueryBundle(q))]

        retrievers = {"langchain": langchain_ids, "llama_index": llama_index_ids}
        rows: dict[str, dict] = {}
        for mode in modes:
            rows[mode] = {"ragqa_eval": {m: report["results"][mode][m]
                                         for m in ("recall@1", "recall@5", "recall@10", "all_gold@10", "mrr", "n")}}
            for name, make in retrievers.items():
                search = make(mode)
                rankings = [rank_paragraphs([pid_of.get(d, d) for d in search(q.question)])
                            for q in evalset.questions]
                metrics = summarise(rankings, golds)
                rows[mode][name] = {m: metrics[m] for m in rows[mode]["ragqa_eval"]}
            rows[mode]["identical"] = all(rows[mode][n] == rows[mode]["ragqa_eval"] for n in retrievers)

        # overhead at k=5, interleaved, default mode; retriever objects built once, as an app would
        mode = modes[0]
        coll = handle.get()
        lc_retriever = lc.RagqaRetriever(collection=COLLECTION, settings=settings, retrieval=mode, k=5)
        li_retriever = li.RagqaRetriever(COLLECTION, settings=settings, k=5, retrieval=mode)
        paths = {"Collection.search": lambda q: coll.search(q, k=5, mode=mode),
                 "langchain RagqaRetriever.invoke": lc_retriever.invoke,
                 "llama_index RagqaRetriever.retrieve": li_retriever.retrieve}
        names = list(paths)
        for q in evalset.questions[:5]:  # warm every path
            for name in names:
                paths[name](q.question)
        times: dict[str, list[float]] = {n: [] for n in names}
        for i, q in enumerate(evalset.questions[: args.timed]):
            for name in names[i % 3:] + names[: i % 3]:
                t = time.perf_counter()
                paths[name](q.question)
                times[name].append(time.perf_counter() - t)
        base = statistics.median(times[names[0]])
        overhead = {n: {"median_ms": round(1000 * statistics.median(v), 2),
                        "ratio_to_collection_search": round(statistics.median(v) / base, 3),
                        "extra_ms": round(1000 * (statistics.median(v) - base), 2)} for n, v in times.items()}

    out = {"set": f"qa/{args.set}", "questions": len(evalset.questions), "paragraphs": report["paragraphs"],
           "chunks": report["chunks"], "chunk_depth": CHUNK_DEPTH, "recall": rows,
           "overhead": {"mode": mode, "k": 5, "questions": min(args.timed, len(evalset.questions)), "paths": overhead},
           "seconds": round(ingest_and_eval, 1),
           "machine": machine_info(("ragqa", "langchain-core", "llama-index-core", "faiss-cpu"))}
    suffix = f"_first{args.limit}" if args.limit else ""
    (ROOT / "bench" / "results" / f"integrations_{args.set}{suffix}.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("recall", "overhead")}, indent=2))


if __name__ == "__main__":
    main()
