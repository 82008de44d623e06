"""Retrieval at scale: collections of 100k and 1M chunks of real text, searched in each mode; the approximate
vector index against exact search on the same queries; the memory of an ingest of 100 and 10,000 documents.

The pool: the shared QA corpora (SQuAD dev part a, HotpotQA's and MuSiQue's paragraphs) and the two books,
ingested once through ragqa as a user's texts are (splitter, fast graph extractor, MiniLM). A collection of N
chunks holds the pool as often as it takes, each copy under new document ids and written to the docstore as an
ingest writes it (chunks, vectors, FTS rows, mentions, page text). Copy 0 is the pool as embedded; every other
copy's vectors are turned by a random rotation of its own, so each copy has the geometry of real embeddings
(their neighbourhoods and clusters) without repeating another copy's points: an approximate index faces N
distinct points shaped like a real collection's. The text is repeated as is, so a term's posting list holds
N/pool as many chunks, as it would in a real collection N/pool times larger.

Per collection: the docstore write, the vector index build through the product's own path (RAGQA_INDEX_TYPE
auto: flat below 50k vectors, IVF above) with its seconds and memory, search p50/p95 per mode through
`Collection.search` (k=10; every question embedded once beforehand, that time reported apart, as the
retriever's query cache does for a question searched in several modes), and recall@10 of the IVF and HNSW
indexes against exact search, each at its default and at other search widths (nprobe, efSearch), on the
questions' vectors turned into a copy drawn at random, tie-aware (a returned chunk counts when its exact score
reaches the 10th best). Each collection is built in its own
process so its peak memory is its own.

Ingest memory: `ragqa ingest` of a folder of 100 and of 10,000 text files (the pool's paragraphs, cycled, each
file numbered), its resident memory sampled every 0.2 s.

    .venv/bin/python bench/scale.py                              # 100k and 1M chunks, ingest of 100 / 10,000
    .venv/bin/python bench/scale.py --sizes 100000 --ingest-docs 100,1000   # a quicker look
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
QA_SETS = ("qa/squad_v1.1_dev_part_a.json", "qa/hotpotqa_train_sample100.json", "qa/musique_train_sample100.json")
BOOKS = ("long/pride_and_prejudice_pg1342.txt", "long/a_tale_of_two_cities_pg98.txt")
MODES = ("dense", "lexical", "hybrid", "graph")
K = 10


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(resident, peak resident) MB of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return round(fields.get("VmRSS", 0.0), 1), round(fields.get("VmHWM", 0.0), 1)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else 0.0


def pool_texts() -> list:
    from ragqa.eval.datasets import load_eval_set
    from ragqa.eval.retrieval import texts_of
    from ragqa.types import Text

    texts = [t for name in QA_SETS for t in texts_of(load_eval_set(DATA / name))]
    texts += [Text(Path(b).stem, (DATA / b).read_text(encoding="utf-8"), source=b) for b in BOOKS]
    return texts


def questions(n: int) -> list[str]:
    from ragqa.eval.datasets import load_eval_set

    per = math.ceil(n / 2)
    qs = [q.question for name in QA_SETS[:2] for q in load_eval_set(DATA / name, per).questions]
    return qs[:n]


@functools.cache
def rotation(dim: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


# -- one collection of N chunks, in its own process -----------------------------------------------------------
def build_and_measure(pool_home: Path, home: Path, size: int, n_questions: int) -> dict:
    from ragqa.collection import Collection
    from ragqa.index.vectors import FaissIndex, training_size
    from ragqa.settings import Settings
    from ragqa.types import Chunk

    settings = Settings(home=pool_home)
    pool = Collection.open("pool", settings)
    db = pool.store.docs.db
    docs = db.execute("SELECT doc_id, filename, source, kind, pages FROM documents ORDER BY doc_id").fetchall()
    chunks_of: dict[str, list] = {}
    for row in db.execute("SELECT doc_id, ordinal, text, page_start, page_end, char_start, char_end, vector "
                          "FROM chunks ORDER BY doc_id, ordinal"):
        chunks_of.setdefault(row[0], []).append(row)
    ordinal_of = dict(db.execute("SELECT id, ordinal FROM chunks").fetchall())
    mentions_of: dict[str, list] = {}
    for entity, label, typ, chunk_id, doc_id, about in pool.store.docs.mentions():
        mentions_of.setdefault(doc_id, []).append((entity, label, typ, ordinal_of[chunk_id], about))
    pages_of = {d: db.execute("SELECT number, text FROM pages WHERE doc_id=?", (d,)).fetchall() for d, *_ in docs}
    manifest = pool.store.manifest
    pool_chunks = sum(len(c) for c in chunks_of.values())
    pool.close()

    s = Settings(home=home)
    coll = Collection.open("scale", s, create=True)
    coll.store.ensure_manifest(manifest["embedder"], manifest["dim"], **{k: v for k, v in manifest.items()
                                                                         if k not in ("collection", "embedder", "dim")})
    dim = int(manifest["dim"])
    started = time.perf_counter()
    written, copy = 0, 0
    while written < size:
        turn = np.eye(dim, dtype=np.float32) if copy == 0 else rotation(dim, copy)
        batch = []
        for doc_id, filename, source, kind, pages in docs:
            rows = chunks_of.get(doc_id, [])[: size - written]
            if not rows:
                continue
            vectors = np.vstack([np.frombuffer(r[7], dtype=np.float32) for r in rows]) @ turn.T
            new_id = f"{doc_id}-{copy}"
            chunks = [Chunk(new_id, r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]
            keep = len(rows)
            batch.append(dict(doc_id=new_id, filename=filename, source=f"{source}#{copy}", kind=kind, pages=pages,
                              notes=[], chunks=chunks, vectors=vectors,
                              mentions=[m for m in mentions_of.get(doc_id, []) if m[3] < keep],
                              page_texts=pages_of[doc_id]))
            written += keep
            if len(batch) == 500:
                coll.store.docs.add_documents(batch)
                batch = []
            if written >= size:
                break
        if batch:
            coll.store.docs.add_documents(batch)
        copy += 1
    write_s = time.perf_counter() - started
    after_write = rss_mb()

    started = time.perf_counter()
    index = coll.store.vectors()  # the product's own build: kind chosen by RAGQA_INDEX_TYPE (auto)
    coll.store.save_derived()
    build_s = time.perf_counter() - started
    after_build = rss_mb()
    disk_mb = sum(f.stat().st_size for f in coll.store.dir.iterdir() if f.is_file()) / 2**20

    qs = questions(n_questions)
    embed_s = []
    for q in qs:
        t0 = time.perf_counter()
        coll.search(q, k=K, mode="dense")  # embeds the question once (the query cache keeps it for every mode)
        embed_s.append(time.perf_counter() - t0)
    modes = {}
    graph_s = None
    for mode in MODES:
        if mode == "graph":
            t0 = time.perf_counter()
            coll.search(qs[0], k=K, mode="graph")  # the entity index is built on the first graph query
            graph_s = round(time.perf_counter() - t0, 2)
        seconds = []
        for q in qs:
            t0 = time.perf_counter()
            coll.search(q, k=K, mode=mode)
            seconds.append((time.perf_counter() - t0) * 1000)
        modes[mode] = {"p50_ms": pct(seconds, 0.5), "p95_ms": pct(seconds, 0.95)}

    # recall@10 of the approximate indexes against exact search, on the questions turned into random copies
    ids, vecs = zip(*coll.store.docs.iter_vectors(), strict=True)
    ids, vecs = np.concatenate(ids), np.vstack(vecs)
    from ragqa import backends

    emb = backends.embedder(s.embedder, s)
    rng = np.random.default_rng(0)
    qv = np.vstack([emb.embed_query(q) for q in qs]).astype(np.float32)
    targets = rng.integers(0, copy, len(qs))
    qv = np.vstack([v @ (np.eye(dim, dtype=np.float32) if t == 0 else rotation(dim, int(t))).T
                    for v, t in zip(qv, targets, strict=True)])
    exact = vecs @ qv.T  # (N, Q)
    kth = np.partition(exact, len(exact) - K, axis=0)[len(exact) - K]
    position = {int(i): n for n, i in enumerate(ids)}

    def recall(found: np.ndarray) -> float:
        hit = [sum(1 for i in row[:K] if i >= 0 and exact[position[int(i)], qn] >= kth[qn] - 1e-5) / K
               for qn, row in enumerate(found)]
        return round(float(np.mean(hit)), 4)

    def vector_ms(ix) -> float:
        seconds = []
        for v in qv:
            t0 = time.perf_counter()
            ix.search(v[None, :], K)
            seconds.append((time.perf_counter() - t0) * 1000)
        return pct(seconds, 0.5)

    def sweep(ix) -> list[dict]:
        """Recall and speed of an approximate index at other search widths (IVF nprobe, HNSW efSearch): what
        the product's defaults are chosen from. The default is restored afterwards."""
        inner = ix._inner
        if ix.kind == "ivf":
            name, default, values = "nprobe", inner.nprobe, [max(1, inner.nlist // d) for d in (32, 16, 8, 4)]
        elif ix.kind == "hnsw":
            name, default, values = "efSearch", inner.hnsw.efSearch, [64, 128, 256, 512]
        else:
            return []
        out = []
        for value in values:
            if ix.kind == "ivf":
                inner.nprobe = value
            else:
                inner.hnsw.efSearch = value
            out.append({name: value, "recall_at_10": recall(ix.search(qv, K)[1]), "vector_search_p50_ms": vector_ms(ix)})
        if ix.kind == "ivf":
            inner.nprobe = default
        else:
            inner.hnsw.efSearch = default
        return out

    def described(ix, build: float, auto: bool) -> dict:
        extra = {"nlist": ix._inner.nlist, "nprobe": ix._inner.nprobe} if ix.kind == "ivf" else (
            {"efSearch": ix._inner.hnsw.efSearch} if ix.kind == "hnsw" else {})
        return {"build_s": round(build, 1), "recall_at_10": recall(ix.search(qv, K)[1]),
                "vector_search_p50_ms": vector_ms(ix), "chosen_by_auto": auto, **extra, "sweep": sweep(ix)}

    indexes = {index.kind: described(index, build_s, True)}
    for kind in ("ivf", "hnsw", "flat"):
        if kind in indexes:
            continue
        t0 = time.perf_counter()
        sample = vecs if kind != "ivf" or len(vecs) <= training_size(len(vecs)) else vecs[
            np.sort(np.random.default_rng(0).choice(len(vecs), training_size(len(vecs)), replace=False))]
        other = FaissIndex(dim, kind, threads=s.threads, train=sample if kind == "ivf" else None, n_vectors=len(vecs))
        other.add(ids, vecs)
        indexes[kind] = described(other, time.perf_counter() - t0, False)
        del other
    coll.close()
    return {"chunks": int(coll_chunks(home)), "pool_chunks": pool_chunks, "copies": copy,
            "docstore_write_s": round(write_s, 1), "index_build_s": round(build_s, 1), "index_kind": index.kind,
            "disk_mb": round(disk_mb), "rss_mb": {"after_write": after_write[0], "after_build": after_build[0],
                                                  "peak": rss_mb()[1]},
            "questions": len(qs), "query_embed_p50_ms": pct([x * 1000 for x in embed_s], 0.5),
            "graph_index_build_s": graph_s, "search_ms": modes, "indexes": indexes}


def coll_chunks(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "indexes" / "scale" / "docstore.sqlite") as db:
        return db.execute("SELECT count(*) FROM chunks").fetchone()[0]


# -- ingest memory ----------------------------------------------------------------------------------------------
def ingest_memory(texts: list, n_docs: int, work: Path) -> dict:
    folder = work / f"docs{n_docs}"
    folder.mkdir(parents=True)
    paragraphs = [t for t in texts if len(t.text) < 5000]
    for n in range(n_docs):
        t = paragraphs[n % len(paragraphs)]
        (folder / f"doc{n:05d}.txt").write_text(f"Document {n}. {t.title}\n\n{t.text}\n", encoding="utf-8")
    env = {**os.environ, "RAGQA_HOME": str(work / f"home{n_docs}")}
    started = time.perf_counter()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "ragqa"), "ingest", str(folder), "--collection", "mem"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    while proc.poll() is None:
        try:
            samples.append((round(time.perf_counter() - started, 1), rss_mb(proc.pid)[0]))
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"ragqa ingest of {n_docs} documents failed ({proc.returncode})")
    rss = [r for _, r in samples] or [0.0]
    tenth = max(1, len(rss) // 10)
    return {"documents": n_docs, "seconds": round(time.perf_counter() - started, 1), "peak_rss_mb": max(rss),
            "rss_mb_by_tenth_of_the_run": [max(rss[i:i + tenth]) for i in range(0, len(rss), tenth)][:10]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,1000000", help="chunks per collection, comma-separated")
    ap.add_argument("--questions", type=int, default=200, help="SQuAD and HotpotQA questions searched")
    ap.add_argument("--ingest-docs", default="100,10000", help="documents per measured ingest")
    ap.add_argument("--pool-texts", type=int, default=None, help="only the first N texts of the pool (a quick look)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    ap.add_argument("--one", nargs=3, metavar=("POOL_HOME", "HOME", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        result = build_and_measure(Path(args.one[0]), Path(args.one[1]), int(args.one[2]), args.questions)
        print("RESULT " + json.dumps(result))
        return

    from ragqa.collection import Collection
    from ragqa.settings import Settings

    result = {"benchmark": "scale", "k": K, "machine": machine_info(("faiss-cpu", "sentence-transformers"))}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-scale-") as tmp:
        work = Path(tmp)
        texts = pool_texts()[:args.pool_texts]
        started = time.perf_counter()
        pool = Collection.open("pool", Settings(home=work / "pool"), create=True)
        report = pool.ingest_texts(texts)
        result["pool"] = {"texts": len(texts), "chunks": pool.store.docs.n_chunks(),
                          "ingest_s": round(time.perf_counter() - started, 1), "embedder": pool.embedder_name,
                          "failed": len(getattr(report, "failed", []) or [])}
        pool.close()
        print(f"pool: {result['pool']}", file=sys.stderr)
        result["collections"] = []
        for size in (int(x) for x in args.sizes.split(",") if x):
            home = work / f"scale{size}"
            out = subprocess.run([sys.executable, __file__, "--one", str(work / "pool"), str(home), str(size),
                                  "--questions", str(args.questions)], capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"collection of {size} chunks failed:\n{out.stderr[-3000:]}")
            result["collections"].append(json.loads(line[len("RESULT "):]))
            print(json.dumps(result["collections"][-1]), file=sys.stderr)
            subprocess.run(["rm", "-rf", str(home)], check=False)
        result["ingest_memory"] = []
        for n in (int(x) for x in args.ingest_docs.split(",") if x):
            result["ingest_memory"].append(ingest_memory(texts, n, work / "ingest"))
            print(json.dumps(result["ingest_memory"][-1]), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
