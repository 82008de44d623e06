"""Background jobs (ingestion, summaries) recorded in SQLite, run one at a time by a worker thread.

A job is `queued`, `running`, `succeeded` or `failed`. The row is the record: progress is written while the job
runs, so `GET /v1/jobs/{id}` reads it from any request thread, and a restart finds every job where it was.
Several processes may share one job store (API replicas on one machine): each claims jobs atomically and
records itself as the job's owner, holding a lock file for as long as it lives. At start-up, and while idle, a
job left `running` by a process that died (its lock is free) is queued again, because ingestion is idempotent
(documents are keyed by the sha256 of their bytes; each one commits in one transaction), unless it has
already been interrupted `MAX_ATTEMPTS` times or its uploaded files are gone: then it is marked `failed`, with
that reason. A graceful shutdown stops the running job between two progress steps and queues it again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ragqa.errors import RagqaError

log = logging.getLogger(__name__)

STATES = ("queued", "running", "succeeded", "failed")
KINDS = ("ingest", "summarize")
MAX_ATTEMPTS = 3  # a job that was running at 3 crashes is probably what crashes the server
PROGRESS_EVERY = 0.5  # seconds between progress writes
RECOVER_EVERY = 15.0  # seconds between looks for jobs orphaned by a replica that died

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    collection TEXT,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    notes TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created);
"""


def new_job_id() -> str:
    return uuid.uuid4().hex[:20]


class Interrupted(Exception):
    """Raised inside a running job when the server shuts down; the job is queued again, not failed."""


class JobStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        try:  # added for replicas; two processes may race to add it
            self.db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):
                raise
        self._lock = threading.Lock()  # one connection shared by request threads and the worker
        # This process's identity as a job owner: a lock file held while it lives, so other processes sharing
        # the store can tell a running job of a live replica from one whose process died.
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._leases = path.parent / "workers"
        self._lease: int | None = None

    def close(self) -> None:
        with self._lock:
            self.db.close()
        if self._lease is not None:
            (self._leases / f"{self.owner}.lock").unlink(missing_ok=True)
            os.close(self._lease)  # releases the lock
            self._lease = None

    def _hold_lease(self) -> None:
        if self._lease is None:
            self._leases.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._leases / f"{self.owner}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lease = fd

    def owner_alive(self, owner: str | None) -> bool:
        """Whether the process that claimed a job still lives: its lock file is still locked."""
        if not owner:
            return False
        if owner == self.owner:
            return True
        path = self._leases / f"{owner}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)  # a dead owner's file
        return False

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    # -- writing ---------------------------------------------------------------------------------
    def create(self, kind: str, collection: str | None, params: dict, job_id: str | None = None) -> dict:
        now = time.time()
        job_id = job_id or new_job_id()
        self._q("INSERT INTO jobs(id, kind, collection, state, params, created, updated) VALUES(?,?,?,?,?,?,?)",
                (job_id, kind, collection, "queued", json.dumps(params), now, now))
        return self.get(job_id)

    def claim_next(self) -> dict | None:
        """The oldest queued job, now `running` (attempts + 1) and owned by this process; None when nothing waits."""
        self._hold_lease()
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY created LIMIT 1").fetchone()
                if row:
                    now = time.time()
                    self.db.execute("UPDATE jobs SET state='running', attempts=attempts+1, started=?, updated=?, "
                                    "owner=? WHERE id=?", (now, now, self.owner, row[0]))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        return self.get(row[0]) if row else None

    def set_progress(self, job_id: str, progress: dict) -> None:
        self._q("UPDATE jobs SET progress=?, updated=? WHERE id=?", (json.dumps(progress), time.time(), job_id))

    def finish(self, job_id: str, state: str, *, result: dict | None = None, error: str | None = None) -> None:
        now = time.time()
        self._q("UPDATE jobs SET state=?, result=?, error=?, finished=?, updated=? WHERE id=?",
                (state, json.dumps(result) if result is not None else None, error, now, now, job_id))

    def requeue(self, job_id: str, note: str, *, count_attempt: bool = True) -> None:
        job = self.get(job_id)
        notes = [*job["notes"], note] if job else [note]
        self._q("UPDATE jobs SET state='queued', notes=?, attempts=attempts-?, updated=? WHERE id=?",
                (json.dumps(notes), 0 if count_attempt else 1, time.time(), job_id))

    def fail_interrupted(self, job_id: str, reason: str) -> None:
        job = self.get(job_id)
        notes = [*job["notes"], reason] if job else [reason]
        now = time.time()
        self._q("UPDATE jobs SET state='failed', error=?, notes=?, finished=?, updated=? WHERE id=?",
                (reason, json.dumps(notes), now, now, job_id))

    def recover(self, inputs_present: Callable[[dict], bool], max_attempts: int = MAX_ATTEMPTS) -> list[str]:
        """Jobs left `running` by a process that died: queue them again, or fail them saying why. A job whose
        owner is alive (this process, or another replica sharing the store) is left to it."""
        actions = []
        for job_id, owner in self._q("SELECT id, owner FROM jobs WHERE state='running' ORDER BY created"):
            if self.owner_alive(owner):
                continue
            job = self.get(job_id)
            done = _progress_words(job["progress"])
            attempt = job["attempts"]
            if attempt >= max_attempts:
                reason = (f"interrupted by a server restart {attempt} times (last at {done}); "
                          "giving up: see the server log for what stopped it")
                self.fail_interrupted(job_id, reason)
            elif not inputs_present(job):
                reason = f"interrupted by a server restart (at {done}), and its uploaded files are gone"
                self.fail_interrupted(job_id, reason)
            else:
                reason = f"interrupted by a server restart during attempt {attempt} (at {done}); resumed"
                self.requeue(job_id, reason)
            log.warning("job %s: %s", job_id, reason)
            actions.append(f"{job_id}: {reason}")
        return actions

    # -- reading ---------------------------------------------------------------------------------
    _COLUMNS = "id, kind, collection, state, params, progress, result, error, attempts, notes, created, started, finished"

    def get(self, job_id: str) -> dict | None:
        rows = self._q(f"SELECT {self._COLUMNS} FROM jobs WHERE id=?", (job_id,))
        return _row(rows[0]) if rows else None

    def list(self, *, collections: set[str] | None = None, state: str | None = None, limit: int = 50) -> list[dict]:
        sql, args = f"SELECT {self._COLUMNS} FROM jobs WHERE 1=1", []
        if state:
            sql += " AND state=?"
            args.append(state)
        if collections is not None:
            sql += f" AND collection IN ({','.join('?' * len(collections))})"
            args.extend(sorted(collections))
        sql += " ORDER BY created DESC LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self._q(sql, tuple(args))]

    def counts(self) -> dict[tuple[str, str], int]:
        return {(k, s): n for k, s, n in self._q("SELECT kind, state, count(*) FROM jobs GROUP BY kind, state")}

    def waiting(self) -> int:
        return self._q("SELECT count(*) FROM jobs WHERE state='queued'")[0][0]

    def ping(self) -> None:
        self._q("SELECT 1")


def _row(r: tuple) -> dict:
    return {"id": r[0], "kind": r[1], "collection": r[2], "state": r[3], "params": json.loads(r[4]),
            "progress": json.loads(r[5]), "result": json.loads(r[6]) if r[6] else None, "error": r[7],
            "attempts": r[8], "notes": json.loads(r[9]), "created": r[10], "started": r[11], "finished": r[12]}


def _progress_words(p: dict) -> str:
    if "files_total" in p:
        return f"{p.get('files_done', 0)}/{p['files_total']} files, {p.get('chunks_done', 0)} chunks"
    if "level" in p:
        return f"{p['level']} {p.get('done', 0)}/{p.get('total', 0)}"
    return "the start"


def public(job: dict) -> dict:
    """The job as the API shows it: no server paths."""
    files = [f["filename"] for f in job["params"].get("files", [])]
    if job["params"].get("filename"):
        files = [job["params"]["filename"]]
    return {"job_id": job["id"], "kind": job["kind"], "collection": job["collection"], "state": job["state"],
            "files": files, "progress": job["progress"], "result": job["result"], "error": job["error"],
            "attempts": job["attempts"], "notes": job["notes"], "created_at": job["created"],
            "started_at": job["started"], "finished_at": job["finished"]}


class JobContext:
    """What a running job sees: a throttled progress writer that also notices a shutdown."""

    def __init__(self, store: JobStore, job: dict, stop: threading.Event):
        self.store, self.job, self.stop = store, job, stop
        self._last = 0.0

    def progress(self, data: dict, *, force: bool = False) -> None:
        if self.stop.is_set():
            raise Interrupted()
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_EVERY:
            self.store.set_progress(self.job["id"], data)
            self._last = now


Runner = Callable[[dict, JobContext], tuple[str, dict, str | None]]  # -> (state, result, error)


class Worker:
    """One thread running queued jobs in order; `stop()` checkpoints the running one and returns."""

    def __init__(self, store: JobStore, runners: dict[str, Runner], on_done: Callable[[dict, dict], None] | None = None,
                 recover: Callable[[], list[str]] | None = None):
        self.store, self.runners, self.on_done = store, runners, on_done
        self.recover = recover  # while idle: resume jobs of a replica that died (RECOVER_EVERY)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ragqa-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("job %s still running after %.0fs; it will resume at the next start", self.current, timeout)

    def _loop(self) -> None:
        last_recover = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.recover and time.monotonic() - last_recover > RECOVER_EVERY:
                    last_recover = time.monotonic()
                    self.recover()
                job = self.store.claim_next()
            except sqlite3.Error:
                log.exception("job store unavailable; retrying")
                job = None
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: dict) -> None:
        self.current = job["id"]
        ctx = JobContext(self.store, job, self._stop)
        started = time.perf_counter()
        log.info("job %s (%s, %s) started, attempt %d", job["id"], job["kind"], job["collection"], job["attempts"])
        try:
            state, result, error = self.runners[job["kind"]](job, ctx)
            self.store.finish(job["id"], state, result=result, error=error)
            if self.on_done:
                self.on_done(job, result or {})
        except Interrupted:
            self.store.requeue(job["id"], "stopped by a server shutdown; resumed at the next start",
                               count_attempt=False)
            log.info("job %s checkpointed at shutdown", job["id"])
        except RagqaError as e:
            self.store.finish(job["id"], "failed", error=str(e))
        except Exception as e:
            log.exception("job %s failed unexpectedly", job["id"])
            self.store.finish(job["id"], "failed", error=f"unexpected error ({type(e).__name__}); see the server log")
        finally:
            self.current = None
            log.info("job %s done in %.1fs", job["id"], time.perf_counter() - started)
