"""`ragqa eval`: retrieval recall of each mode on a standard QA file, through the normal ingest pipeline.

Every distinct paragraph becomes one document (its title as the document's title) of a fresh collection;
each question is searched in each mode, chunks are mapped back to paragraphs (a paragraph ranks at its best
chunk), and recall@k / all_gold@10 / MRR are computed against the gold paragraphs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from ragqa.collection import Collection
from ragqa.errors import InputError
from ragqa.eval.datasets import EvalSet, load_eval_set
from ragqa.eval.metrics import rank_paragraphs, summarise
from ragqa.fsio import save_figure
from ragqa.ingest import text_document
from ragqa.retrieve import MODES
from ragqa.settings import Settings
from ragqa.types import Text

log = logging.getLogger(__name__)

CHUNK_DEPTH = 50  # chunks fetched per question: enough for 10 distinct paragraphs when some split in several


def texts_of(evalset: EvalSet) -> list[Text]:
    return [Text(p.title, p.text, source=f"{evalset.name}:{p.pid}") for p in evalset.paragraphs]


def evaluate_retrieval(
    path: str | Path, settings: Settings, *, modes: Sequence[str] = MODES, limit: int | None = None,
    collection: str | None = None, on_progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """{"set", "questions", "paragraphs", "chunks", "ingest_seconds", "results": {mode: metrics + query_seconds}}.

    `collection`: ingest into (or reuse) this collection under settings.home instead of a fresh temporary one.
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise InputError(f"unknown retrieval mode '{unknown[0]}'", hint=f"Known: {', '.join(MODES)}.")
    evalset = load_eval_set(path, limit)
    notify = on_progress or (lambda stage, done, total: None)
    with ExitStack() as stack:
        if collection is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ragqa-eval-")))
            settings = settings.model_copy(update={"home": tmp, "indexes_dir": tmp / "indexes", "kg_dir": tmp / "kg"})
        coll = Collection.open(collection or "eval", settings, create=True)
        stack.callback(coll.close)
        texts = texts_of(evalset)
        pid_of = {text_document(t).doc_id: p.pid for t, p in zip(texts, evalset.paragraphs)}
        report = coll.ingest_texts(texts, on_progress=lambda p: notify("ingest", p.files_done, p.files_total))
        failed = report.failed
        if failed:
            raise InputError(f"{len(failed)} paragraphs failed to ingest: {failed[0].reason}")
        new = sum(f.status == "ok" for f in report.files)
        stats = coll.stats()
        results = {}
        for mode in modes:
            rankings, golds = [], []
            started = time.perf_counter()
            for i, q in enumerate(evalset.questions):
                hits = coll.search(q.question, k=CHUNK_DEPTH, mode=mode)
                rankings.append(rank_paragraphs([pid_of.get(h.doc_id, h.doc_id) for h in hits]))
                golds.append(set(q.gold))
                if i % 25 == 0 or i == len(evalset.questions) - 1:
                    notify(mode, i + 1, len(evalset.questions))
            seconds = time.perf_counter() - started
            results[mode] = {**summarise(rankings, golds), "query_seconds": round(seconds, 2),
                             "ms_per_query": round(1000 * seconds / max(1, len(rankings)), 2)}
            log.info("%s %s: %s", evalset.name, mode, results[mode])
        return {"set": evalset.name, "format": evalset.format, "language": evalset.language,
                "questions": len(evalset.questions), "paragraphs": len(evalset.paragraphs),
                "chunks": stats["chunks"], "graph_entities": stats["entities"],
                "ingested": new, "ingest_seconds": round(report.seconds, 2), "results": results}


def as_issue_json(result: dict) -> dict:
    """The report's shape, {mode: {"recall@1", ..., "mrr", "n"}}, each mode also carrying the set's ingestion
    time and its own query time."""
    return {mode: {**metrics, "ingest_seconds": result["ingest_seconds"], "paragraphs": result["paragraphs"],
                   "chunks": result["chunks"]}
            for mode, metrics in result["results"].items()}


def plot(result: dict, path: str | Path) -> Path:
    """Grouped bars: one group per metric, one bar per mode. Needs matplotlib (`pip install 'ragqa[eval]'`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise InputError("plots need matplotlib", hint="pip install 'ragqa[eval]'") from e
    metrics = ["recall@1", "recall@2", "recall@5", "recall@10", "all_gold@10", "mrr"]
    modes = list(result["results"])
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        values = [result["results"][mode].get(m, 0.0) for m in metrics]
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(metrics))]
        bars = ax.bar(xs, values, width, label=mode)
        ax.bar_label(bars, labels=[f"{v:.2f}".lstrip("0") for v in values], fontsize=6, padding=1)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share")
    ax.set_title(f"{result['set']}: {result['questions']} questions, {result['paragraphs']} paragraphs")
    ax.legend(ncols=len(modes), fontsize=8, loc="upper left")
    return save_figure(fig, path)
