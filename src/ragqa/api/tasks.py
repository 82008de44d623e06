"""What each kind of job does, through the facade: ingest uploaded files, or summarise one file.

Both are safe to run again after a crash: ingestion skips documents already committed (same sha256), and
summaries come back from the summary cache.
"""

from __future__ import annotations

import glob
from dataclasses import asdict
from pathlib import Path

from ragqa.api.jobs import Interrupted, JobContext
from ragqa.api.uploads import UploadArea
from ragqa.collection import Collection, summarize_file
from ragqa.settings import Settings
from ragqa.types import Progress


def inputs_present(job: dict) -> bool:
    params = job["params"]
    if job["kind"] == "ingest":
        return any(Path(f["path"]).exists() for f in params.get("files", []))
    return Path(params.get("path", "")).exists()


def run_ingest(job: dict, ctx: JobContext, *, settings: Settings, uploads: UploadArea) -> tuple[str, dict, str | None]:
    files = job["params"]["files"]
    coll = Collection.open(job["collection"], settings, create=True)
    try:
        def on_progress(p: Progress) -> None:
            ctx.progress(asdict(p))

        present = [f for f in files if Path(f["path"]).exists()]
        before = {d["doc_id"]: d for d in coll.documents()}
        try:
            # glob.escape: the facade expands globs, and a file name may contain glob characters. An upload
            # replaces an earlier upload of the same file name in this collection (each upload has its own
            # folder); documents ingested from elsewhere (the CLI) are left alone.
            report = coll.ingest([glob.escape(f["path"]) for f in present], on_progress=on_progress,
                                 same_name_under=uploads.root / job["collection"], meta=job["params"].get("meta"))
        except Interrupted:
            raise  # resumes after the restart: keep the files
        except BaseException:
            kept = {d["source"] for d in coll.documents()}
            for f in files:
                if str(Path(f["path"]).resolve()) not in kept:
                    uploads.remove(f["path"])
            raise
        by_path = {str(Path(r.path).resolve()): r for r in report.files}
        docs = {d["doc_id"]: d for d in coll.documents()}
        rows = []
        for f in files:
            path = str(Path(f["path"]).resolve())
            r = by_path.get(path)
            row = {"filename": f["filename"], "status": "failed", "reason": "uploaded file is missing",
                   "doc_id": None, "pages": 0, "chunks": 0, "notes": [], "replaced": []}
            if r is not None:
                row.update(status=r.status, reason=r.reason, doc_id=r.doc_id, pages=r.pages, chunks=r.chunks,
                           notes=r.notes, replaced=r.replaced)
                for old in r.replaced:  # replaced in the same commit: its uploaded file is no longer cited
                    if old in before:
                        uploads.remove(before[old]["source"])
                if r.status == "unchanged" and docs.get(r.doc_id, {}).get("source") == path:
                    # committed by an earlier attempt of this job, before a restart
                    doc = docs[r.doc_id]
                    row.update(status="ok", reason="ingested before a server restart", pages=doc["pages"],
                               chunks=doc["chunks"])
            if row["status"] != "ok":
                uploads.remove(f["path"])  # refused or a duplicate: keep nothing
            rows.append(row)
        ctx.progress({**asdict(Progress(files_total=len(files), files_done=len(files),
                                        pages_done=sum(r["pages"] for r in rows if r["status"] == "ok"),
                                        chunks_done=sum(r["chunks"] for r in rows if r["status"] == "ok")))},
                     force=True)
    finally:
        coll.close()
    failed = [r for r in rows if r["status"] == "failed"]
    result = {"collection": job["collection"], "files": rows, "errors": [
        {"filename": r["filename"], "reason": r["reason"]} for r in failed],
        "pages": sum(r["pages"] for r in rows if r["status"] == "ok"),
        "chunks": sum(r["chunks"] for r in rows if r["status"] == "ok"), "seconds": round(report.seconds, 2)}
    if failed and len(failed) == len(rows):
        reasons = "; ".join(f"{r['filename']}: {r['reason']}" for r in failed[:5])
        return "failed", result, f"no file could be ingested: {reasons}"
    return "succeeded", result, None


def run_summarize(job: dict, ctx: JobContext, *, settings: Settings, uploads: UploadArea) -> tuple[str, dict, str | None]:
    p = job["params"]

    def on_progress(level: str, done: int, total: int) -> None:
        ctx.progress({"level": level, "done": done, "total": total})

    try:
        summary = summarize_file(Path(p["path"]), settings, chain=p["chain"], target_words=p["target_words"],
                                 on_progress=on_progress)
    except Interrupted:
        raise  # resumes after the restart: keep the file
    except BaseException:
        if p.get("uploaded"):
            uploads.remove(p["path"])
        raise
    if p.get("uploaded"):
        uploads.remove(p["path"])
    return "succeeded", {"filename": p["filename"], "doc_id": p.get("doc_id"), **summary.to_dict()}, None
