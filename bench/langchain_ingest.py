"""The ingestion pipeline a user would otherwise write with LangChain, timed stage by stage.

PyPDFLoader -> RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
-> HuggingFaceEmbeddings(the local all-MiniLM-L6-v2 folder) -> FAISS.from_documents

Runs in its own virtual environment (.venv-bench: langchain-huggingface caps huggingface-hub below 2, which
ragqa's .venv must not get), so it imports nothing from ragqa. `bench/ingest.py` starts it and reads the JSON
it prints as its last line of standard output:

    .venv-bench/bin/python bench/langchain_ingest.py --model MODEL_DIR FILE.pdf [FILE.pdf ...]

Stages (seconds; library imports happen before the clock starts): load (PyPDFLoader.load, one Document per
page), split, model (building HuggingFaceEmbeddings: loading the sentence-transformers model from disk),
embed+index (FAISS.from_documents: embedding every chunk and adding it to an IndexFlatL2), total (their sum).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
import warnings

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from machine import version  # noqa: E402  (stdlib only: runs in .venv-bench too)


def _versions() -> dict[str, str | None]:
    return {dist: version(dist) for dist in ("torch", "sentence-transformers", "transformers", "huggingface-hub", "faiss-cpu", "pypdf",
                 "langchain-core", "langchain-community", "langchain-huggingface", "langchain-text-splitters")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="PDF files")
    ap.add_argument("--model", required=True, help="sentence-transformers model folder (never the hub)")
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--chunk-overlap", type=int, default=200)
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    warnings.filterwarnings("ignore")  # langchain-community's sunset notice and friends
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    t_import = time.perf_counter()
    import sentence_transformers  # noqa: F401 - imported by HuggingFaceEmbeddings(); imports are not timed
    import torch
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on stderr
    import_seconds = time.perf_counter() - t_import

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    pages = []
    per_file = []
    for path in args.files:
        f0 = time.perf_counter()
        docs = PyPDFLoader(path).load()
        per_file.append({"file": path, "pages": len(docs), "load_seconds": time.perf_counter() - f0})
        pages.extend(docs)
    t1 = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    chunks = splitter.split_documents(pages)
    t2 = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=args.model, model_kwargs={"device": "cpu"})
    t3 = time.perf_counter()
    store = FAISS.from_documents(chunks, embeddings)
    t4 = time.perf_counter()
    cpu = time.process_time() - cpu0

    result = {
        "pipeline": "langchain",
        "files": per_file,
        "pages": len(pages),
        "chunks": len(chunks),
        "vectors": int(store.index.ntotal),
        "chunk_chars": sum(len(c.page_content) for c in chunks),
        "seconds": {
            "load": t1 - t0,
            "split": t2 - t1,
            "model": t3 - t2,
            "embed+index": t4 - t3,
            "total": t4 - t0,
        },
        "import_seconds": import_seconds,
        "cpu_seconds": cpu,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "chunk_size": args.chunk_size,
        "chunk_overlap": args.chunk_overlap,
        "python": platform.python_version(),
        "versions": _versions(),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
