"""What one app instance holds: settings, the job store and worker, the upload area, metrics, and the lanes
that run blocking work off the event loop.

Blocking work (retrieval, LLM calls, SQLite) never runs on the event loop: each kind goes to a *lane*, a small
thread pool with a bounded waiting line. Past `workers + queue_size` requests in a lane, the next one gets 503
with Retry-After at once instead of waiting without bound. Every lane thread keeps its own `Collection`
objects (its own SQLite connection and FAISS copy), so a search never reads an index that another thread
is updating; the LLM and the embedder are shared (one per process) and serialise themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from ragqa.api.errors import Overloaded
from ragqa.api.jobs import JobStore, Worker
from ragqa.api.metrics import Metrics
from ragqa.api.uploads import UploadArea
from ragqa.collection import Collection
from ragqa.errors import NotFound
from ragqa.settings import Settings, check_collection_name

log = logging.getLogger(__name__)

class Lane:
    """A thread pool with a bounded waiting line. Retry-After comes from what the lane measured: the mean
    service time of its tasks (from start to end in a thread, not counting the wait), times the tasks ahead,
    over the threads; before any task has finished, the oldest running task's age stands in for it."""

    MAX_RETRY_AFTER = 600

    def __init__(self, name: str, workers: int, queue_size: int, metrics: Metrics):
        self.name, self.workers, self.metrics = name, workers, metrics
        self.capacity = workers + queue_size
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix=f"ragqa-{name}")
        self.pending = 0
        self.mean_seconds: float | None = None  # moving average of measured service times
        self._running: dict[int, float] = {}  # task -> when its thread started it
        self._lock = threading.Lock()
        self._ids = itertools.count()

    def service_seconds(self) -> float:
        """What one task takes, as measured (the caller holds the lock)."""
        if self.mean_seconds is not None:
            return max(self.mean_seconds, 0.1)
        now = time.perf_counter()
        return max([1.0, *(now - t for t in self._running.values())])

    def submit(self, fn, *args, **kw) -> Future:
        """Start `fn` in the lane, or raise Overloaded (503) when the lane is full."""
        with self._lock:
            if self.pending >= self.capacity:
                self.metrics.reject(self.name)
                each = self.service_seconds()
                ahead = self.pending - self.workers + 1
                retry = min(self.MAX_RETRY_AFTER, max(1, math.ceil(each * ahead / self.workers)))
                raise Overloaded(f"the server is busy: {self.pending} {self.name} requests running or waiting "
                                 f"(capacity {self.capacity}), about {each:.1f} s each on {self.workers} "
                                 f"thread(s); retry in {retry} s", retry_after=retry,
                                 hint="Retry after the number of seconds in the Retry-After header.")
            self.pending += 1
        task = next(self._ids)

        def timed():
            with self._lock:
                self._running[task] = time.perf_counter()
            return fn(*args, **kw)

        def release(_):
            with self._lock:
                self.pending -= 1
                started = self._running.pop(task, None)
                if started is not None:
                    took = time.perf_counter() - started
                    self.mean_seconds = took if self.mean_seconds is None else 0.8 * self.mean_seconds + 0.2 * took

        try:
            future = self.executor.submit(timed)
        except BaseException:
            release(None)
            raise
        future.add_done_callback(release)  # counted until the thread finishes, even if the client left
        return future

    async def run(self, fn, *args, **kw):
        return await asyncio.wrap_future(self.submit(fn, *args, **kw))

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class CollectionPool:
    """Per-thread Collection objects, opened on first use and kept."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._local = threading.local()
        self._all: list[Collection] = []
        self._lock = threading.Lock()

    def get(self, name: str) -> Collection:
        cache = self._local.__dict__.setdefault("collections", {})
        coll = cache.get(name)
        if coll is None or not coll.dir.exists():
            coll = Collection.open(name, self.settings)
            cache[name] = coll
            with self._lock:
                self._all.append(coll)
        return coll

    def close(self) -> None:
        with self._lock:
            for coll in self._all:
                try:
                    coll.close()
                except Exception:  # closing at shutdown; a failure here changes nothing
                    log.debug("closing %s", coll.name, exc_info=True)
            self._all.clear()


class AppState:
    def __init__(self, settings: Settings, metrics: Metrics | None = None):
        self.settings = settings
        self.root = settings.home / "server"
        self.metrics = metrics or Metrics()
        self.jobs = JobStore(self.root / "jobs.sqlite")
        self.uploads = UploadArea(self.root / "uploads")
        self.pool = CollectionPool(settings)
        s = settings.server
        self.search_lane = Lane("search", s.workers, s.queue_size, self.metrics)
        self.answer_lane = Lane("answer", s.workers, s.queue_size, self.metrics)
        self.write_lane = Lane("write", 1, s.queue_size, self.metrics)
        self.worker: Worker | None = None
        self.recovered: list[str] = []
        self.metrics.gauges.append(self._gauges)

    def require_collection(self, name: str) -> str:
        """The same checks as Collection.open, without opening it (cheap, on the event loop)."""
        check_collection_name(name)
        if not (self.settings.collection_dir(name) / "docstore.sqlite").exists():
            raise NotFound(f"No collection '{name}'.",
                           hint=f"Upload documents first: POST /v1/collections/{name}/documents.")
        return name

    def job_capacity_check(self) -> None:
        waiting = self.jobs.waiting()
        if waiting >= self.settings.server.job_queue_size:
            self.metrics.reject("jobs")
            raise Overloaded(f"{waiting} jobs are already waiting (limit {self.settings.server.job_queue_size})",
                             retry_after=30, hint="Retry later, when some jobs have finished.")

    def _gauges(self) -> list[tuple[str, str, dict, float]]:
        rows = []
        counts = self.jobs.counts()
        for kind in ("ingest", "summarize"):
            for state in ("queued", "running", "succeeded", "failed"):
                rows.append(("ragqa_jobs", "Jobs by kind and state.", {"kind": kind, "state": state},
                             counts.get((kind, state), 0)))
        for lane in (self.search_lane, self.answer_lane, self.write_lane):
            rows.append(("ragqa_lane_pending", "Requests running or waiting in each lane.", {"lane": lane.name},
                         lane.pending))
            rows.append(("ragqa_lane_capacity", "Most requests a lane takes before answering 503.",
                         {"lane": lane.name}, lane.capacity))
        return rows

    def close(self) -> None:
        for lane in (self.search_lane, self.answer_lane, self.write_lane):
            lane.shutdown()
        self.pool.close()
        self.jobs.close()
