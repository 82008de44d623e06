"""The facade the CLI and the API share: Collection.open(name, settings) -> ingest, delete, search, stats.

It owns the on-disk layout of a collection (docstore.sqlite, vectors.faiss + stamp, manifest.json, and the
graph in kg/) and keeps the derived files in step with the docstore.
"""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ragqa import __version__, backends, retrieve
from ragqa.errors import ConfigError, EmbedderMismatch, InputError, NotFound
from ragqa.graph.kg import KnowledgeGraph
from ragqa.index.docstore import DocStore
from ragqa.index.vectors import FaissIndex, choose_kind, read_stamp, write_json_atomic
from ragqa.ingest import ingest_files, ingest_texts
from ragqa.load import SUPPORTED_SUFFIXES
from ragqa.retrieve.graph import EntityIndex
from ragqa.settings import Settings
from ragqa.split import Splitter
from ragqa.threads import BackgroundWork
from ragqa.types import FileResult, Hit, IngestReport, Progress, Text

log = logging.getLogger(__name__)


def list_collections(settings: Settings) -> list[str]:
    root = settings.indexes_dir
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "docstore.sqlite").exists())


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files, folders (recursively) and globs -> supported files in a stable order, plus what matched nothing."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        raw = str(raw)
        matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(raw), recursive=True))] or [Path(raw)]
        for p in matches:
            if p.is_dir():
                files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                                    and not f.name.startswith(".") and f.name != "README.md"))
            elif p.is_file():
                files.append(p)
            else:
                missing.append(raw)
    return list(dict.fromkeys(files)), missing


class _QueryCache:
    """The embedder with its last few query vectors remembered: a question searched in several modes (or the
    same question asked again) is embedded once."""

    _cache: dict[tuple[str, str], np.ndarray] = {}
    _lock = threading.Lock()

    def __init__(self, embedder):
        self._embedder = embedder

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def embed_query(self, text: str) -> np.ndarray:
        key = (self._embedder.name, text)
        with self._lock:
            vec = self._cache.get(key)
        if vec is None:
            vec = self._embedder.embed_query(text)
            with self._lock:
                if len(self._cache) >= 4096:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = vec
        return vec


class Collection:
    def __init__(self, name: str, settings: Settings, store: DocStore):
        self.name = name
        self.settings = settings
        self.dir = settings.collection_dir(name)
        self.store = store
        self.kg_path = settings.kg_path(name)
        self._vectors: FaissIndex | None = None
        self._writing = False  # this object holds the writer lock: shared vector indexes change only then
        self._vectors_generation = -1
        self._graph: KnowledgeGraph | None = None
        self._graph_generation = -1
        self._read_lock = threading.RLock()
        self._entities: EntityIndex | None = None
        self._entities_generation = -1

    # -- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, name: str | None, settings: Settings, *, create: bool = False) -> Collection:
        name = name or settings.collection
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            raise InputError(f"invalid collection name '{name}'",
                             hint="Use letters, digits, '_', '-' and '.', starting with a letter or digit.")
        path = settings.collection_dir(name) / "docstore.sqlite"
        if not path.exists() and not create:
            raise NotFound(f"No collection '{name}'.", hint=f"Run `ragqa ingest PATH --collection {name}` first.")
        return cls(name, settings, DocStore(path))

    def close(self) -> None:
        self.store.close()

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return {}

    @property
    def embedder_name(self) -> str:
        return self.manifest.get("embedder") or self.settings.embedder

    def embedder(self):
        return backends.embedder(self.embedder_name, self.settings)

    def _ensure_manifest(self, embedder) -> None:
        manifest = self.manifest
        if manifest:
            if manifest.get("embedder") != embedder.name or int(manifest.get("dim", -1)) != embedder.dim:
                raise EmbedderMismatch(
                    f"collection '{self.name}' was built with embedder '{manifest.get('embedder')}' "
                    f"(dim {manifest.get('dim')}), not '{embedder.name}' (dim {embedder.dim})",
                    hint="Use the same embedder (RAGQA_EMBEDDER) or another --collection.")
            return
        write_json_atomic(self.manifest_path, {
            "collection": self.name, "embedder": embedder.name, "dim": embedder.dim,
            "embed_backend": getattr(embedder, "backend", "engine"), "chunk_tokens": self.settings.chunk_tokens,
            "chunk_overlap": self.settings.chunk_overlap, "index_type": self.settings.index_type,
            "created_at": time.time(), "ragqa_version": __version__})

    # -- one writer at a time ------------------------------------------------------------------------
    @contextmanager
    def _writer(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".write.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("collection %s is being written by another process; waiting", self.name)
                fcntl.flock(fh, fcntl.LOCK_EX)
            self._writing = True
            try:
                yield
            finally:
                self._writing = False
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- derived stores --------------------------------------------------------------------------
    @property
    def vectors_path(self) -> Path:
        return self.dir / backends.VECTOR_FILES[self.settings.vectors.backend]

    def vectors(self) -> FaissIndex:
        """The FAISS index in step with the docstore: loaded, reconciled by id when stale, or rebuilt."""
        with self._read_lock:
            generation = self.store.generation
            if self._vectors is not None and self._vectors_generation == generation:
                return self._vectors
            index = self._vectors
            if index is None and self.vectors_path.exists():
                try:
                    index = backends.load_vectors(self.settings, self.name, self.dir,
                                                  read_stamp(self.vectors_path).get("kind", "flat"))
                    if read_stamp(self.vectors_path).get("generation") == generation:
                        self._vectors, self._vectors_generation = index, generation
                        return index
                except Exception as e:  # unreadable file: derived, so rebuild
                    log.warning("vector index unreadable (%s); rebuilding from the docstore", e)
                    index = None
            self._vectors = self._reconcile(index)
            self._vectors_generation = generation
            return self._vectors

    def _writer_busy(self) -> bool:
        with open(self.dir / ".write.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    def _reconcile(self, index: FaissIndex | None) -> FaissIndex:
        if self.settings.vectors.backend != "faiss" and not self._writing:
            # A shared index (Qdrant: other processes read it too) changes only under the writer lock. While a
            # writer holds it, read the index as the writer leaves it: it adds each document after its commit.
            if index is not None and self._writer_busy():
                return index
            with self._writer():
                return self._reconcile(index)
        truth = self.store.chunk_ids()
        kind = choose_kind(self.settings.index_type if not self.manifest else self.manifest.get("index_type", "auto"),
                           len(truth))
        if index is not None and index.kind == kind:
            have = index.ids()
            extra = np.setdiff1d(have, truth)
            if len(extra) and not index.supports_remove:
                index = None
            else:
                index.remove(extra)
                for ids, vecs in self.store.iter_vectors(np.setdiff1d(truth, have)):
                    index.add(ids, vecs)
                log.info("vector index reconciled: -%d +%d", len(extra), len(np.setdiff1d(truth, have)))
                return index
        dim = int(self.manifest.get("dim") or self.embedder().dim)
        train = None
        if kind == "ivf":
            train = np.vstack([v for _, v in self.store.iter_vectors()]) if len(truth) else None
        index = backends.new_vectors(self.settings, self.name, self.dir, dim, kind, train)
        for ids, vecs in self.store.iter_vectors():
            index.add(ids, vecs)
        log.info("vector index rebuilt: %s, %d vectors", kind, len(index))
        return index

    def entity_index(self) -> EntityIndex:
        """What graph expansion reads (entities, the chunks about them, mentions), rebuilt per generation."""
        with self._read_lock:
            generation = self.store.generation
            if self._entities is None or self._entities_generation != generation:
                self._entities, self._entities_generation = EntityIndex.build(self.store), generation
            return self._entities

    def graph(self) -> KnowledgeGraph:
        with self._read_lock:
            generation = self.store.generation
            if self._graph is not None and self._graph_generation == generation:
                return self._graph
            graph, stamp = KnowledgeGraph.load(self.kg_path)
            if stamp != generation:
                graph = KnowledgeGraph()
                graph.add_rows(self.store.mentions(), self.store.relations())
            self._graph, self._graph_generation = graph, generation
            return graph

    def _save_derived(self) -> None:
        generation = self.store.generation
        self.vectors().save(self.vectors_path, generation)
        self.graph().save(self.kg_path, generation)

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def _ingesting(self):
        """Under the write lock: the embedder, a splitter in its tokens, and the sink that keeps FAISS and the
        graph in step with the docstore."""
        embedder = backends.embedder(self.settings.embedder, self.settings)
        with self._writer():
            self._ensure_manifest(embedder)
            chunk_tokens = min(self.settings.chunk_tokens, embedder.max_tokens - 2)  # room for [CLS]/[SEP]
            tokenizer = embedder.tokenizer()
            if tokenizer is not None:
                tokenizer.model_max_length = 10**9  # the splitter measures long texts; silence the length warning
            splitter = Splitter(tokenizer, chunk_tokens, self.settings.chunk_overlap,
                                count_tokens=embedder.count_tokens)
            vectors, graph = self.vectors(), self.graph()
            collection = self

            class _Sink:
                def added(self, doc_id, ids, vecs):
                    vectors.add(np.asarray(ids, np.int64), vecs)
                    graph.add_rows(collection.store.mentions(doc_id), collection.store.relations(doc_id))
                    collection._vectors_generation = collection._graph_generation = collection.store.generation

                def removed(self, doc_id, ids, mentions, relations):
                    if vectors.supports_remove:
                        vectors.remove(np.asarray(ids, np.int64))
                    else:
                        collection._vectors = None  # HNSW: rebuilt from the docstore at the next checkpoint
                    graph.remove_document(doc_id, mentions, relations)

                def checkpoint(self, final=False):
                    collection._save_derived()

            yield embedder, splitter, _Sink()

    def ingest(self, paths: Iterable[str | Path], *, password: str | None = None,
               on_progress: Callable[[Progress], None] | None = None, engine: str = "local") -> IngestReport:
        files, missing = expand_paths(paths)
        if engine != "local":
            report = self._ingest_on(engine, files, password=password, on_progress=on_progress)
            report.files.extend(FileResult(m, "failed", "no such file or folder") for m in missing)
            return report
        lease = BackgroundWork(backends.thread_budget(self.settings), self.settings.embed_threads)
        with self._ingesting() as (embedder, splitter, sink), lease:
            report = ingest_files(
                files, collection=self.name, store=self.store, sink=sink, embedder=embedder, splitter=splitter,
                extractor=backends.graph_extractor(self.settings), password=password or self.settings.pdf_password,
                max_mb=self.settings.max_file_mb, max_pages=self.settings.max_pages, on_progress=on_progress,
                lease=lease)
        report.files.extend(FileResult(m, "failed", "no such file or folder") for m in missing)
        return report

    def _ingest_on(self, engine: str, files: list[Path], *, password, on_progress) -> IngestReport:
        """The same pipeline on Ray Data: extraction and embedding there, the commits here (ray_engine.py)."""
        if engine != "ray":
            raise InputError(f"unknown engine '{engine}'", hint="Use local or ray.")
        from functools import partial

        from ragqa import ray_engine

        ray_engine.start(self.settings.ray.address, self.settings.ray.num_cpus or self.settings.threads)
        with self._ingesting() as (embedder, splitter, sink):
            return ray_engine.ingest_files_ray(
                files, collection=self.name, store=self.store, sink=sink, make_splitter=lambda s=splitter: s,
                make_extractor=partial(backends.graph_extractor, self.settings), dim=embedder.dim,
                make_embedder=partial(backends.embedder, self.settings.embedder, self.settings),
                password=password or self.settings.pdf_password, max_mb=self.settings.max_file_mb,
                max_pages=self.settings.max_pages, embed_actors=self.settings.ray.embed_actors,
                on_progress=on_progress)

    def ingest_texts(self, texts: Iterable[Text], *,
                     on_progress: Callable[[Progress], None] | None = None) -> IngestReport:
        """Texts already in memory (title + body), through the same pipeline; many small ones are batched."""
        lease = BackgroundWork(backends.thread_budget(self.settings), self.settings.embed_threads)
        with self._ingesting() as (embedder, splitter, sink), lease:
            return ingest_texts(texts, collection=self.name, store=self.store, sink=sink, embedder=embedder,
                                splitter=splitter, extractor=backends.graph_extractor(self.settings),
                                on_progress=on_progress, lease=lease)

    def delete(self, ref: str) -> list[dict]:
        docs = self.store.find_documents(ref)
        if not docs:
            raise NotFound(f"No document '{ref}' in collection '{self.name}'.",
                           hint=f"See `ragqa stats --collection {self.name} --documents`.")
        if len({d["doc_id"] for d in docs}) > 1 and ref not in {d["doc_id"] for d in docs}:
            raise InputError(f"'{ref}' matches {len(docs)} documents; pass a doc_id.")
        with self._writer():
            vectors, graph = self.vectors(), self.graph()
            for doc in docs:
                mentions, relations = self.store.mentions(doc["doc_id"]), self.store.relations(doc["doc_id"])
                ids = self.store.delete_document(doc["doc_id"])
                if vectors.supports_remove:
                    vectors.remove(np.asarray(ids, np.int64))
                    self._vectors_generation = self.store.generation
                else:
                    self._vectors = None
                graph.remove_document(doc["doc_id"], mentions, relations)
                self._graph_generation = self.store.generation
            self._save_derived()
        return docs

    # -- reading ---------------------------------------------------------------------------------
    def passages(self, hits: list[Hit], neighbours: int | None = None) -> list[Hit]:
        """What the LLM reads: each hit with its neighbouring chunks, touching hits merged (retrieve/passages)."""
        from ragqa.retrieve.passages import with_neighbours

        n = self.settings.context_neighbours if neighbours is None else neighbours
        return with_neighbours(hits, self.store, n)

    def search(self, query: str, k: int = 5, mode: str | None = None) -> list[Hit]:
        mode = mode or self.settings.retrieval
        if not query.strip():
            raise InputError("empty query")
        if mode == "lexical":
            return retrieve.lexical(self.store, query, k)
        vectors = self.vectors()
        embedder = _QueryCache(self.embedder())
        if mode == "dense":
            return retrieve.dense(self.store, vectors.search, embedder, query, k)
        multilingual = embedder.name in backends.MULTILINGUAL_EMBEDDERS
        if mode == "hybrid":
            return retrieve.hybrid(self.store, vectors.search, embedder, query, k, multilingual=multilingual)
        if mode == "graph":
            return retrieve.graph(self.store, vectors.search, embedder, self.entity_index(), query, k,
                                  multilingual=multilingual)
        if mode == "auto":
            return retrieve.auto(self.store, vectors.search, embedder, self.entity_index(), query, k,
                                 multilingual=multilingual)
        raise ConfigError(f"unknown retrieval mode '{mode}'", hint=f"Known: {', '.join(retrieve.MODES)}.")

    def ask(self, question: str, *, chain: str | None = None, k: int | None = None, retrieval: str | None = None,
            on_token: Callable[[str], None] | None = None, max_tokens: int | None = None):
        """Retrieve, then answer through a chain; the Answer carries its sources and a trace."""
        if not question.strip():
            raise InputError("empty question")
        with backends.thread_budget(self.settings).interactive():
            return self._ask(question, chain=chain, k=k, retrieval=retrieval, on_token=on_token,
                             max_tokens=max_tokens)

    def _ask(self, question, *, chain, k, retrieval, on_token, max_tokens=None):
        from ragqa.chains import Budget, Prompts, run_chain

        started = time.perf_counter()
        hits = self.search(question, k=k or self.settings.k, mode=retrieval)
        retrieve_seconds = time.perf_counter() - started
        if not hits:
            raise NotFound(f"collection '{self.name}' has nothing matching the question.",
                           hint="Ingest documents first, or rephrase.")
        retrieved = len(hits)
        hits = self.passages(hits)
        llm = backends.llm(self.settings)
        answer = run_chain(chain or self.settings.chain, question, hits, llm,
                           budget=Budget.for_llm(llm, max_tokens or self.settings.llm.max_tokens),
                           prompts=Prompts.load(self.settings.prompts_file), on_token=on_token,
                           abstain_below=self.settings.abstain_below, judge=self.settings.rerank_judge)
        answer.detail["retrieval"] = {"mode": retrieval or self.settings.retrieval, "k": retrieved,
                                      "passages": len(hits), "neighbours": self.settings.context_neighbours,
                                      "seconds": round(retrieve_seconds, 3)}
        answer.detail["model"] = llm.name
        return answer

    # -- the knowledge graph ----------------------------------------------------------------------
    def graph_entity(self, name: str) -> str:
        """A user's spelling of an entity -> its key in the graph; NotFound with the closest names."""
        import difflib

        from ragqa.graph.extract import normalise
        from ragqa.retrieve.graph import match_form

        g = self.graph().g
        key = normalise(name)
        if key in g:
            return key
        form = match_form(name)
        same = [n for n in g if match_form(n) == form]
        if same:
            return max(same, key=lambda n: g.nodes[n].get("mentions", 0))
        close = difflib.get_close_matches(key, list(g.nodes), n=5, cutoff=0.6)
        raise NotFound(f"No entity '{name}' in collection '{self.name}'.",
                       hint=f"Close: {', '.join(close)}." if close else "See `ragqa graph export` for all names.")

    def graph_show(self, name: str, limit: int = 20) -> dict:
        """The entity, the chunks about it, and its neighbours (entities it mentions from its own chunks, entities
        whose chunks mention it, and co-occurring ones), each with the pages that support the link."""
        key = self.graph_entity(name)
        kg, index = self.graph(), self.entity_index()
        node = kg.g.nodes[key]
        about = kg.about_chunk_ids(key)
        links: dict[tuple[str, str], set[int]] = {}
        for chunk_id in about:  # what the entity's own chunks mention
            hit = self.store.hits([chunk_id], [0.0], "graph")
            for other in (index.mentions_of(hit[0]) if hit else set()):
                links.setdefault((other, "mentions"), set()).add(chunk_id)
        for chunk_id in set(kg.chunk_ids(key)) | set(index.mentioning(key)):  # who mentions it
            for other in index.chunk_about.get(chunk_id, set()) - {key}:
                links.setdefault((other, "mentioned by"), set()).add(chunk_id)
        for other, edge in kg.neighbours(key, limit=limit):
            links.setdefault((other, "co-occurs"), set()).update(c for ids in edge["docs"].values() for c in ids)
        pages = self._pages({c for ids in links.values() for c in ids} | set(about))
        order = {"mentions": 0, "mentioned by": 1, "co-occurs": 2}  # the links expansion walks come first
        ranked = sorted(links.items(), key=lambda kv: (order[kv[0][1]], -len(kv[1]), kv[0][0]))[:limit]
        neighbours = [{"entity": other, "label": kg.g.nodes[other]["label"] if other in kg.g else other,
                       "relation": relation, "weight": len(chunks),
                       "pages": sorted({pages[c] for c in chunks if c in pages})[:10]}
                      for (other, relation), chunks in ranked]
        return {"entity": key, "label": node.get("label", key), "type": node.get("type", ""),
                "mentions": node.get("mentions", 0), "documents": len(node.get("docs", {})),
                "about": sorted({pages[c] for c in about if c in pages}), "neighbours": neighbours}

    def _pages(self, chunk_ids: set[int]) -> dict[int, tuple[str, int]]:
        hits = self.store.hits(sorted(chunk_ids), [0.0] * len(chunk_ids), "graph")
        return {h.chunk_id: (h.filename, h.page_start) for h in hits}

    def graph_export(self, path: str | Path, fmt: str | None = None) -> Path:
        """GraphML (.graphml) or node-link JSON (.json) of the whole graph, per-document chunk lists included."""
        from ragqa.graph.export import export

        return export(self.graph(), Path(path), fmt)

    def graph_png(self, name: str, path: str | Path, limit: int = 20) -> Path:
        """A PNG of the entity's neighbourhood as `graph_show` lists it."""
        from ragqa.graph.export import draw_neighbourhood

        shown = self.graph_show(name, limit=limit)
        return draw_neighbourhood(shown["label"], shown["neighbours"], Path(path),
                                  title=f"{shown['label']} ({self.name}): {len(shown['neighbours'])} neighbours")

    def documents(self) -> list[dict]:
        return self.store.list_documents()

    def stats(self) -> dict:
        counts = self.store.counts()
        graph = self.graph().stats()
        stamp = read_stamp(self.vectors_path)
        return {"collection": self.name, **counts, "graph_nodes": graph["nodes"], "graph_edges": graph["edges"],
                "embedder": self.manifest.get("embedder"), "dim": self.manifest.get("dim"),
                "index_type": stamp.get("kind"), "vectors": stamp.get("count"), "generation": self.store.generation,
                "path": str(self.dir)}

    def check(self) -> list[str]:
        """Docstore, FAISS and graph agree (tests and `ragqa stats --check`)."""
        problems = self.store.check()
        truth = set(self.store.chunk_ids().tolist())
        have = set(self.vectors().ids().tolist())
        if truth != have:
            problems.append(f"FAISS ids differ from chunk ids: {len(have - truth)} extra, {len(truth - have)} missing")
        graph_chunks = {c for _, data in self.graph().g.nodes(data=True) for ids in data["docs"].values() for c in ids}
        if graph_chunks - truth:
            problems.append(f"{len(graph_chunks - truth)} graph chunk references without a chunk")
        return problems


def summarize_file(path: Path, settings: Settings, *, chain: str = "map_reduce", target_words: int = 200,
                   on_progress: Callable[[str, int, int], None] | None = None, engine: str = "local"):
    """Summarise one .txt/.md/.pdf with the configured LLM; results cached under the cache dir (resumable)."""
    from ragqa.chains import Budget, Prompts
    from ragqa.load import load
    from ragqa.summarize import SummaryCache, summarize_text

    doc = load(Path(path), password=settings.pdf_password, max_mb=settings.max_file_mb, max_pages=settings.max_pages)
    text = "\n\n".join(p.text for p in doc.text_pages)
    llm = backends.llm(settings)
    if engine == "ray":  # the LLM map steps on Ray actors; budgets, levels and the cache stay here
        from functools import partial

        from ragqa import ray_engine

        ray_engine.start(settings.ray.address, settings.ray.num_cpus or settings.threads)
        llm = ray_engine.RayLLM(llm, partial(backends.llm, settings), actors=settings.ray.llm_actors)
    elif engine != "local":
        raise InputError(f"unknown engine '{engine}'", hint="Use local or ray.")
    budget = Budget.for_llm(llm, max(settings.llm.max_tokens, int(target_words * 1.6)))
    cache = SummaryCache(settings.cache_dir / "summaries.sqlite")
    return summarize_text(text, llm, budget=budget, prompts=Prompts.load(settings.prompts_file), chain=chain,
                          target_words=target_words, cache=cache, on_progress=on_progress)


def diagnose(settings: Settings):
    """`ragqa doctor`: backend, model, context window, embedder and vector index, each checked for real."""
    from ragqa.doctor import diagnose as run

    return run(settings)
