"""End-to-end ingestion benchmark: ragqa vs the LangChain pipeline a user would otherwise write.

One run measures, on the same PDFs (default: every PDF in $RAGQA_DATA/pdfs/long/):

a. ragqa: Collection.open(name, Settings(home=tmpdir), create=True).ingest(files): wall time, pages/s,
   chunks/s and IngestReport.stage_seconds (extract, split, graph run in a producer thread overlapped with
   embed; index is the docstore transaction + FAISS/graph updates and checkpoints).
b. the bare embedder on the very chunk texts ragqa stored (read back from the docstore), warmed up, and the
   embed stage's efficiency against it:
       embed_stage_efficiency = (chunks / stage_seconds["embed"]) / (chunks / raw_seconds)
                              = raw_seconds / stage_seconds["embed"]          (1.0 = no loss; lower = slower)
       embed_stage_slowdown   = 1 / embed_stage_efficiency                     (raw chunks/s / stage chunks/s)
   plus the bare embedder fed the same texts in ragqa.ingest.EMBED_SLICE-sized slices (as the ingest loop does),
   which separates the cost of slicing (less length-sorting, more padding) from the cost of sharing the cores
   with the extraction thread.
c. LangChain: PyPDFLoader -> RecursiveCharacterTextSplitter(1000, 200) -> HuggingFaceEmbeddings(the same local
   MiniLM folder) -> FAISS.from_documents, in a subprocess on .venv-bench (bench/langchain_ingest.py); and the
   agreement of ragqa's embedder with sentence-transformers on torch (min cosine over 50 of ragqa's chunks).
d. a table on standard output and everything in a JSON file (--out).

Both pipelines' times include loading the embedding model (and tokenizer) in the process, but not importing
the libraries (torch, transformers, onnxruntime, faiss, langchain): both import before their clocks start. The
one-time ONNX export that ragqa caches per machine is done, untimed, before the run if it is not cached yet.

    RAGQA_DATA=../shared/data .venv/bin/python bench/ingest.py [--files GLOB ...] [--skip-langchain] [--out PATH]
        [--embed-backend auto|onnx|torch|bf16]
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from machine import machine_info as _machine_info  # noqa: E402
from machine import version  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
BENCH_STAMP = BENCH_VENV / ".installed"
WORKER = ROOT / "bench" / "langchain_ingest.py"
# torch first and pinned: it resolves to the local CPU wheel; an unpinned torch would pull the CUDA build.
TORCH = "torch==2.13.0"
# The libraries both pipelines share are pinned to the versions in constraints.txt, so that the comparison is
# between pipelines, not between pypdf or transformers releases.
BENCH_REQUIREMENTS = [
    TORCH, "faiss-cpu==1.15.1", "pypdf==7.1.0", "sentence-transformers==6.2.0", "transformers==5.23.0",
    "langchain-text-splitters==1.1.3", "langchain-community==0.4.2", "langchain-huggingface==1.2.3",
]
AGREEMENT_SAMPLE = 50
COLLECTION = "bench"


# -- helpers ---------------------------------------------------------------------------------------
def fail(message: str, code: int = 2) -> None:
    print(f"bench/ingest.py: {message}", file=sys.stderr)
    sys.exit(code)


def note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict:
    from ragqa.cpu import cpu_flags

    info = _machine_info(("ragqa", "torch", "onnxruntime", "faiss-cpu", "pypdf", "transformers",
                          "sentence-transformers", "tokenizers", "langchain-text-splitters"))
    # the embedder's speed depends on these more than on anything in ragqa (docs/benchmarks.md)
    info["cpu_flags"] = sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                                              "amx_int8", "avx_vnni"})
    return info


def expand(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        if not matches:
            fail(f"no file matches {pattern!r}")
        files.extend(Path(m).resolve() for m in matches if Path(m).is_file())
    files = list(dict.fromkeys(files))
    if not files:
        fail("no files to ingest")
    not_pdf = [f.name for f in files if f.suffix.lower() != ".pdf"]
    if not_pdf:
        fail(f"only PDFs can be compared with PyPDFLoader, not: {', '.join(not_pdf)}")
    return files


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def rate(n: float, seconds: float | None) -> float | None:
    return n / seconds if seconds else None


# -- a. ragqa --------------------------------------------------------------------------------------
def ensure_onnx_export(settings) -> dict:
    """Export the ONNX model once (untimed) when the cache does not hold it yet, as any first run would."""
    from ragqa import backends
    from ragqa.embed.sentence_transformer import SentenceTransformerEmbedder

    backend = backends_resolved(settings)
    if backend != "onnx":
        return {"backend": backend}
    path = backends.embedder(settings.embedder, settings).onnx_path()  # constructs, loads nothing
    info = {"backend": "onnx", "path": str(path), "cached": path.exists()}
    if not path.exists():
        note(f"exporting the embedder to ONNX once (not timed): {path}")
        t0 = time.perf_counter()
        # a separate instance, so the timed ingest still loads the ONNX model as a fresh process does
        SentenceTransformerEmbedder(settings.embedder, backend="onnx", threads=settings.embed_threads,
                                    cache_dir=path.parent.parent).embed_documents(["warm-up"])
        info["export_seconds"] = time.perf_counter() - t0
    return info


def backends_resolved(settings) -> str:
    """The embedding backend `auto` resolves to on this CPU (constructs the embedder; loads nothing)."""
    from ragqa import backends

    return backends.embedder(settings.embedder, settings).backend


def run_ragqa(files: list[Path], home: Path, embed_backend: str | None = None) -> tuple[dict, list[str], object]:
    from ragqa.collection import Collection
    from ragqa.settings import Settings

    # --embed-backend when given, else RAGQA_EMBED_BACKEND / the default (auto)
    settings = Settings(home=home, embedder="minilm", **({"embed_backend": embed_backend} if embed_backend else {}))
    onnx = ensure_onnx_export(settings)
    # Library imports are not timed, on either side (the LangChain worker imports before its clock starts too).
    t0 = time.perf_counter()
    import faiss  # noqa: F401
    import onnxruntime  # noqa: F401
    import transformers

    transformers.AutoTokenizer  # noqa: B018 - resolves transformers' lazy module, as the tokenizer load would
    if backends_resolved(settings) in ("bf16", "torch"):
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    import_seconds = time.perf_counter() - t0
    note(f"ragqa: ingesting {len(files)} file(s)")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    coll = Collection.open(COLLECTION, settings, create=True)
    report = coll.ingest(files)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    texts = [row[0] for row in coll.store.docs.db.execute("SELECT text FROM chunks ORDER BY id")]
    stats = coll.stats()
    coll.close()
    if len(texts) != report.chunks:
        note(f"warning: the docstore holds {len(texts)} chunks, the report says {report.chunks}")
    stages = {k: report.stage_seconds.get(k, 0.0) for k in ("extract", "split", "graph", "embed", "index")}
    stages.update({k: v for k, v in report.stage_seconds.items() if k not in stages})
    result = {
        "pipeline": "ragqa",
        "pages": report.pages,
        "chunks": report.chunks,
        "chunk_chars": sum(len(t) for t in texts),
        "seconds": wall,
        "report_seconds": report.seconds,
        "startup_seconds": wall - report.seconds,
        "startup_note": "wall - report_seconds: embedder construction, tokenizer load and manifest before "
                        "ingest_files starts; the ONNX model loads in the embed stage",
        "import_seconds": import_seconds,
        "pages_per_s": rate(report.pages, wall),
        "chunks_per_s": rate(report.chunks, wall),
        "stage_seconds": stages,
        "stage_note": "extract, split and graph run in a producer thread overlapped with embed; index = docstore "
                      "transactions + FAISS/graph updates + checkpoints. Stages sum to more than the wall time "
                      "when the overlap works.",
        "cpu_seconds": cpu,
        "max_rss_mb_process": max(rss0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024,
        "files": [{"file": f.path, "status": f.status, "reason": f.reason, "pages": f.pages, "chunks": f.chunks}
                  for f in report.files],
        "failed": [{"file": f.path, "reason": f.reason} for f in report.failed],
        "collection": {k: stats.get(k) for k in ("documents", "chunks", "vectors", "index_type", "graph_nodes",
                                                 "graph_edges")},
        "settings": {"embedder": settings.embedder, "embed_backend": settings.embed_backend,
                     "embed_backend_resolved": backends_resolved(settings),
                     "embed_batch_size": settings.embed_batch_size, "chunk_tokens": settings.chunk_tokens,
                     "chunk_overlap": settings.chunk_overlap, "threads": settings.threads,
                     "embed_threads": settings.embed_threads, "index_type": settings.index_type,
                     "cache_dir": str(settings.cache_dir)},
        "onnx_export": onnx,
    }
    return result, texts, settings


# -- b. the bare embedder --------------------------------------------------------------------------
def run_raw_embedder(texts: list[str], settings, embed_stage_seconds: float) -> dict:
    from ragqa import backends
    from ragqa.ingest import EMBED_SLICE

    embedder = backends.embedder("minilm", settings)
    note(f"bare embedder: {len(texts)} chunks, whole list, then in slices of {EMBED_SLICE}")
    embedder.embed_documents(texts[:64] or ["warm-up"])  # warm-up (the ingest already loaded it)
    t0 = time.perf_counter()
    embedder.embed_documents(texts)
    raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    for start in range(0, len(texts), EMBED_SLICE):
        embedder.embed_documents(texts[start:start + EMBED_SLICE])
    sliced = time.perf_counter() - t0
    n = len(texts)
    stage_rate = rate(n, embed_stage_seconds)
    raw_rate = rate(n, raw)
    return {
        "backend": embedder.backend,
        "batch_size": embedder.batch_size,
        "threads": embedder.threads,
        "chunks": n,
        "raw_seconds": raw,
        "raw_chunks_per_s": raw_rate,
        "sliced_seconds": sliced,
        "sliced_chunks_per_s": rate(n, sliced),
        "slice": EMBED_SLICE,
        "embed_stage_seconds": embed_stage_seconds,
        "embed_stage_chunks_per_s": stage_rate,
        "embed_stage_efficiency": (stage_rate / raw_rate) if stage_rate and raw_rate else None,
        "embed_stage_slowdown": (raw_rate / stage_rate) if stage_rate and raw_rate else None,
        "sliced_efficiency": (raw / sliced) if sliced else None,
        "formula": "embed_stage_efficiency = (chunks / stage_seconds['embed']) / (chunks / raw_seconds) "
                   "= raw_seconds / stage_seconds['embed'] (1.0 = the ingest embeds as fast as the bare embedder); "
                   "embed_stage_slowdown = 1 / embed_stage_efficiency; sliced_efficiency = raw_seconds / "
                   "sliced_seconds (the part of the loss due to embedding in EMBED_SLICE-sized slices)",
    }


def run_agreement(texts: list[str], settings) -> dict:
    from ragqa import backends
    from ragqa.embed.sentence_transformer import SentenceTransformerEmbedder

    if not texts:
        return {"skipped": "no chunks"}
    idx = np.unique(np.linspace(0, len(texts) - 1, min(AGREEMENT_SAMPLE, len(texts))).round().astype(int))
    sample = [texts[i] for i in idx]
    embedder = backends.embedder("minilm", settings)
    note(f"agreement: {len(sample)} chunks, ragqa ({embedder.backend}) vs sentence-transformers (torch)")
    ours = embedder.embed_documents(sample)
    ref = SentenceTransformerEmbedder("minilm", backend="torch", threads=settings.embed_threads).embed_documents(sample)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    worst = int(np.argmin(cos))
    return {
        "chunks": len(sample),
        "ragqa_backend": embedder.backend,
        "reference": "sentence-transformers, backend=torch",
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "worst_chunk_index": int(idx[worst]),
        "max_abs_diff": float(np.abs(ours - ref).max()),
    }


# -- c. LangChain ----------------------------------------------------------------------------------
def ensure_bench_venv() -> Path:
    if BENCH_STAMP.exists() and BENCH_PYTHON.exists():
        return BENCH_PYTHON
    python = shutil.which("python3") or sys.executable
    note(f"creating {BENCH_VENV} for the LangChain side (once; a few minutes)")
    if not BENCH_PYTHON.exists():
        subprocess.run([python, "-m", "venv", str(BENCH_VENV)], check=True)
    pip = [str(BENCH_PYTHON), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, *BENCH_REQUIREMENTS], check=True)
    BENCH_STAMP.write_text("\n".join(BENCH_REQUIREMENTS) + "\n")
    return BENCH_PYTHON


def run_langchain(files: list[Path], timeout: float) -> dict:
    from ragqa.embed.sentence_transformer import model_dir

    try:
        python = ensure_bench_venv()
    except (OSError, subprocess.CalledProcessError) as e:
        return {"pipeline": "langchain", "error": f"could not set up {BENCH_VENV}: {e}"}
    cmd = [str(python), str(WORKER), "--model", str(model_dir("minilm")), *map(str, files)]
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    note(f"langchain: ingesting {len(files)} file(s) in {python}")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"pipeline": "langchain", "error": f"timed out after {timeout:.0f} s"}
    process_seconds = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {"pipeline": "langchain", "error": f"worker exited {proc.returncode}",
                "stdout_tail": proc.stdout[-2000:]}
    try:
        result = json.loads(lines[-1])
    except ValueError:
        return {"pipeline": "langchain", "error": "worker printed no JSON", "stdout_tail": proc.stdout[-2000:]}
    total = result["seconds"]["total"]
    result.update({"pages_per_s": rate(result["pages"], total), "chunks_per_s": rate(result["chunks"], total),
                   "process_seconds": process_seconds, "command": cmd})
    return result


# -- d. report -------------------------------------------------------------------------------------
def fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(results: dict) -> None:
    rg, lc, raw, agree = results["ragqa"], results.get("langchain"), results["embedder_raw"], results["agreement"]
    rows = [("ragqa", rg["pages"], rg["chunks"], rg["seconds"], rg["pages_per_s"], rg["chunks_per_s"])]
    if lc and "error" not in lc and "skipped" not in lc:
        rows.append(("langchain", lc["pages"], lc["chunks"], lc["seconds"]["total"], lc["pages_per_s"],
                     lc["chunks_per_s"]))
    print()
    print(f"{'pipeline':<10} {'pages':>6} {'chunks':>7} {'seconds':>8} {'pages/s':>8} {'chunks/s':>9}")
    for name, pages, chunks, secs, pps, cps in rows:
        print(f"{name:<10} {pages:>6} {chunks:>7} {fmt(secs):>8} {fmt(pps):>8} {fmt(cps):>9}")
    if results.get("ratio_pages_per_s") is not None:
        print(f"ragqa / langchain pages/s: {results['ratio_pages_per_s']:.2f}x")
    elif lc and "error" in lc:
        print(f"langchain: {lc['error']}")
    elif lc:
        print("langchain: skipped")
    st = rg["stage_seconds"]
    print("ragqa stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in st.items())
          + f"  (wall {rg['seconds']:.1f}, of which startup {rg['startup_seconds']:.1f}; "
          "extract/split/graph overlap embed)")
    if lc and "seconds" in lc:
        print("langchain stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in lc["seconds"].items()))
    print(f"bare embedder ({raw['backend']}): {fmt(raw['raw_chunks_per_s'])} chunks/s whole, "
          f"{fmt(raw['sliced_chunks_per_s'])} in slices of {raw['slice']}; ingest embed stage "
          f"{fmt(raw['embed_stage_chunks_per_s'])} chunks/s -> efficiency {fmt(raw['embed_stage_efficiency'], '.2f')} "
          f"(slowdown {fmt(raw['embed_stage_slowdown'], '.2f')}x)")
    if "min_cosine" in agree:
        print(f"vectors ragqa ({agree['ragqa_backend']}) vs sentence-transformers (torch), {agree['chunks']} chunks: "
              f"min cosine {agree['min_cosine']:.5f}")
    if rg["failed"]:
        print("ragqa failed files: " + "; ".join(f"{Path(f['file']).name}: {f['reason']}" for f in rg["failed"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", nargs="+", metavar="GLOB",
                    help="PDFs to ingest (globs; default: $RAGQA_DATA/pdfs/long/*.pdf)")
    ap.add_argument("--skip-langchain", action="store_true", help="measure ragqa only")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json", help="JSON results")
    ap.add_argument("--langchain-timeout", type=float, default=3600, help="seconds before the worker is stopped")
    ap.add_argument("--embed-backend", choices=("auto", "onnx", "torch", "bf16"),
                    help="ragqa's embedding backend (default: RAGQA_EMBED_BACKEND, else auto: bf16 on a CPU with "
                         "native bfloat16, else onnx)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.files:
        files = expand(args.files)
    else:
        long_dir = DATA / "pdfs" / "long"
        if not long_dir.is_dir():
            fail(f"no benchmark data at {long_dir} (set RAGQA_DATA to the shared data folder, "
                 f"or pass --files)")
        files = expand([str(long_dir / "*.pdf")])

    results: dict = {"benchmark": "ingest", "machine": machine_info(), "data": str(DATA),
                     "files": [{"file": str(f), "bytes": f.stat().st_size} for f in files]}
    with tempfile.TemporaryDirectory(prefix="ragqa-bench-") as tmp:
        results["ragqa"], texts, settings = run_ragqa(files, Path(tmp), args.embed_backend)
        results["embedder_raw"] = run_raw_embedder(texts, settings, results["ragqa"]["stage_seconds"]["embed"])
        results["agreement"] = run_agreement(texts, settings)
    if args.skip_langchain:
        results["langchain"] = {"pipeline": "langchain", "skipped": True}
    else:
        results["langchain"] = run_langchain(files, args.langchain_timeout)
    lc = results["langchain"]
    results["ratio_pages_per_s"] = (results["ragqa"]["pages_per_s"] / lc["pages_per_s"]
                                    if lc.get("pages_per_s") and results["ragqa"]["pages_per_s"] else None)
    results["machine"]["load_average_at_end"] = list(os.getloadavg())
    write_json_atomic(args.out, results)
    print_table(results)
    print(f"\nresults: {args.out}")
    return 0 if "error" not in lc and not results["ragqa"]["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
