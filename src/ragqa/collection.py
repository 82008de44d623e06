"""The facade the CLI and the API share: Collection.open(name, settings) -> ingest, delete, search, ask,
summarize, stats and the graph views. Each verb reads settings once and hands plain arguments down: storage
to `CollectionStore` (index/store.py), retrieval to `Retriever` (retrieve/retriever.py), ingestion to the
pipeline (ingest.py), answering to the chains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ragqa import __version__, backends
from ragqa.errors import InputError, NotFound
from ragqa.filters import Filter
from ragqa.index.store import CollectionStore
from ragqa.ingest import english_only, ingest_files, ingest_texts
from ragqa.load import MEDIA_TYPES, SUPPORTED_SUFFIXES, expand_paths
from ragqa.load.isolated import IsolatedLoader
from ragqa.retrieve.retriever import Retriever
from ragqa.settings import Settings, check_collection_name
from ragqa.split import Splitter
from ragqa.threads import BackgroundWork
from ragqa.types import FileResult, Hit, IngestReport, Progress, Text

if TYPE_CHECKING:
    from ragqa.chains.conversation import Turn

__all__ = ["Collection", "MEDIA_TYPES", "SUPPORTED_SUFFIXES", "diagnose", "list_collections", "summarize_file"]

log = logging.getLogger(__name__)


def list_collections(settings: Settings) -> list[str]:
    root = settings.indexes_dir
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "docstore.sqlite").exists())


class Collection:
    def __init__(self, name: str, settings: Settings):
        self.name, self.settings = name, settings
        self.dir = folder = settings.collection_dir(name)
        self.store = CollectionStore(name, folder, settings.kg_path(name),
                                     backends.vector_factory(settings, name, folder),
                                     dim=lambda: self.embedder().dim, index_type=settings.index_type)
        self.retriever = Retriever(self.store.docs, self.store.vectors, self.embedder,
                                   multilingual=self.embedder_name in backends.MULTILINGUAL_EMBEDDERS,
                                   mode=settings.retrieval, neighbours=settings.context_neighbours)

    @classmethod
    def open(cls, name: str | None, settings: Settings, *, create: bool = False) -> Collection:
        name = check_collection_name(name or settings.collection)
        if not (settings.collection_dir(name) / "docstore.sqlite").exists() and not create:
            raise NotFound(f"No collection '{name}'.", hint=f"Run `ragqa ingest PATH --collection {name}` first.")
        return cls(name, settings)

    def close(self) -> None:
        self.store.close()

    @property
    def embedder_name(self) -> str:
        return self.store.manifest.get("embedder") or self.settings.embedder

    def embedder(self):
        return backends.embedder(self.embedder_name, self.settings)

    # -- writing -------------------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, password: str | None = None,
               on_progress: Callable[[Progress], None] | None = None, engine: str = "local",
               same_name_under: Path | None = None, meta: dict | None = None) -> IngestReport:
        """Files, folders and globs into the collection; a new version of a document (same source, or with
        `same_name_under`, the same file name under that folder) replaces the old one in the same commit.
        `meta`: metadata for every document this ingest adds, which search filters can match."""
        if engine not in ("local", "ray"):
            raise InputError(f"unknown engine '{engine}'", hint="Use local or ray.")
        files, missing = expand_paths(paths)
        s = self.settings
        embedder = backends.embedder(s.embedder, s)
        common = dict(collection=self.name, password=password or s.pdf_password, max_mb=s.max_file_mb,
                      max_pages=s.max_pages, on_progress=on_progress,
                      same_name_under=str(same_name_under.resolve()) + "/" if same_name_under else None)
        with self.store.writer(), self._discarded_if_left_empty():
            splitter = self._prepare_to_write(embedder)
            if engine == "ray":  # the same pipeline, its prepare and embed steps on Ray Data (ray_engine.py)
                from ragqa import ray_engine

                ray_engine.start(s.ray.address, s.ray.num_cpus or s.threads)
                report = ray_engine.ingest_files_ray(
                    files, store=self.store.docs, sink=self.store.sink(), make_splitter=lambda: splitter,
                    make_extractor=partial(backends.graph_extractor, s), dim=embedder.dim,
                    make_embedder=partial(backends.embedder, s.embedder, s), embed_actors=s.ray.embed_actors,
                    english_only_embedder=english_only(embedder), meta=meta, **common)
            else:
                with BackgroundWork(backends.thread_budget(s), s.embed_threads) as lease, \
                        IsolatedLoader(s.parse_memory_mb, s.parse_timeout_s) as loader:
                    report = ingest_files(files, store=self.store.docs, sink=self.store.sink(), embedder=embedder,
                                          splitter=splitter, extractor=backends.graph_extractor(s), lease=lease,
                                          loader=loader, meta=meta, **common)
        report.files.extend(FileResult(m, "failed", "no such file or folder") for m in missing)
        return report

    def ingest_texts(self, texts: Iterable[Text], *,
                     on_progress: Callable[[Progress], None] | None = None) -> IngestReport:
        """Texts already in memory (title + body), through the same pipeline; many small ones are batched."""
        s = self.settings
        embedder = backends.embedder(s.embedder, s)
        with self.store.writer(), self._discarded_if_left_empty(), \
                BackgroundWork(backends.thread_budget(s), s.embed_threads) as lease:
            splitter = self._prepare_to_write(embedder)
            return ingest_texts(texts, collection=self.name, store=self.store.docs, sink=self.store.sink(),
                                embedder=embedder, splitter=splitter, extractor=backends.graph_extractor(s),
                                on_progress=on_progress, lease=lease)

    @contextmanager
    def _discarded_if_left_empty(self):
        """A collection exists once it holds a document: when its first ingest commits nothing (every file
        failed, or the run stopped), its folder and graph go again, so a failed upload leaves no collection."""
        new = not self.store.manifest_path.exists()
        try:
            yield
        finally:
            if new and not self.store.docs.counts()["documents"]:
                log.info("collection %s: first ingest committed nothing; removing it", self.name)
                self.store.discard()

    def _prepare_to_write(self, embedder) -> Splitter:
        """Under the writer lock: the manifest checked (or written), and a splitter in the embedder's tokens."""
        s = self.settings
        self.store.ensure_manifest(
            embedder.name, embedder.dim, embed_backend=getattr(embedder, "backend", "engine"),
            chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap, index_type=s.index_type,
            created_at=time.time(), ragqa_version=__version__)
        tokenizer = embedder.tokenizer()
        if tokenizer is not None:
            tokenizer.model_max_length = 10**9  # the splitter measures long texts; silence the length warning
        chunk_tokens = min(s.chunk_tokens, embedder.max_tokens - 2)  # room for [CLS]/[SEP]
        return Splitter(tokenizer, chunk_tokens, s.chunk_overlap, count_tokens=embedder.count_tokens)

    def find(self, ref: str) -> list[dict]:
        """The documents `ref` names: a doc_id, a unique prefix of 8+ characters, a file name or a source path
        (the same file ingested from two places is one doc_id); NotFound, or InputError when it is ambiguous."""
        docs = self.store.docs.find_documents(ref)
        if not docs:
            raise NotFound(f"No document '{ref}' in collection '{self.name}'.",
                           hint=f"See `ragqa stats --collection {self.name} --documents`.")
        if len({d["doc_id"] for d in docs}) > 1 and ref not in {d["doc_id"] for d in docs}:
            raise InputError(f"'{ref}' matches {len(docs)} documents; pass a doc_id.")
        return [d for d in docs if d["doc_id"] == ref] or docs

    def delete(self, ref: str) -> list[dict]:
        docs = self.find(ref)
        with self.store.writer():
            self.store.delete_documents([d["doc_id"] for d in docs])
        return docs

    # -- reading -------------------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, mode: str | None = None, within: Filter | None = None) -> list[Hit]:
        return self.retriever.search(query, k, mode, within)

    def ask(self, question: str, *, chain: str | None = None, k: int | None = None, retrieval: str | None = None,
            on_token: Callable[[str], None] | None = None, max_tokens: int | None = None,
            hits: list[Hit] | None = None, llm=None, prompts=None,
            on_step: Callable[[str], None] | None = None, within: Filter | None = None,
            history: Sequence[Turn] | None = None, instruction: str | None = None):
        """Retrieve, then answer through a chain; the Answer carries its sources and a trace. The evaluation
        asks through here too: `llm` (a cached model) and `prompts` (short answers) replace the configured
        ones, and `hits` replaces retrieval with given passages (the gold paragraphs). `on_step` hears each
        step's name as it begins: "rewrite" (a follow-up), "retrieve", then the chain's steps ("map", "combine",
        ...). `within` limits retrieval to the chunks a filter allows. `history`: the conversation before the
        question; a question that leans on it is rewritten to stand alone first (chains/conversation.py), and
        the answer's detail says what was searched. `instruction` (a chat's system message) is added to the
        answering step after ragqa's own instructions."""
        from ragqa.chains import Budget, Prompts, run_chain
        from ragqa.chains.base import Trace, step_began, steps_heard_by
        from ragqa.chains.conversation import condense, stands_alone

        if not question.strip():
            raise InputError("empty question")
        s = self.settings
        loading = backends.llm_loading(s) if llm is None else None  # read the model while retrieval runs
        prompts = (prompts or Prompts.load(s.prompts_file)).with_instruction(instruction)
        with backends.thread_budget(s).interactive(), steps_heard_by(on_step):
            before, condensed = Trace(), None
            if history:
                if not stands_alone(question, history)[0]:
                    llm = llm or loading.result()  # the rewrite comes before retrieval
                condensed = condense(question, history, llm, prompts, before,
                                     budget=Budget.for_llm(llm, max_tokens or s.llm.max_tokens) if llm else None)
                question = condensed.question
            started = time.perf_counter()
            if hits is None:
                step_began("retrieve")
                hits = self.search(condensed.search if condensed else question, k=k or s.k, mode=retrieval,
                                   within=within)
                if not hits and within:
                    raise NotFound(f"nothing in collection '{self.name}' matches the question within the filter "
                                   f"{within.describe()}.", hint="Widen the filter, or check the documents' names "
                                   f"and metadata with `ragqa stats --collection {self.name} --documents`.")
                if not hits:
                    raise NotFound(f"collection '{self.name}' has nothing matching the question.",
                                   hint="Ingest documents first, or rephrase.")
                retrieved, hits = len(hits), self.retriever.passages(hits)
            else:
                retrieved = len(hits)
            retrieve_seconds = time.perf_counter() - started
            llm = llm or loading.result()
            answer = run_chain(chain or s.chain, question, hits, llm,
                               budget=Budget.for_llm(llm, max_tokens or s.llm.max_tokens),
                               prompts=prompts, on_token=on_token,
                               abstain_below=s.abstain_below, judge=s.rerank_judge)
        answer.trace.steps[:0] = before.steps
        answer.detail["retrieval"] = {"mode": retrieval or s.retrieval, "k": retrieved, "passages": len(hits),
                                      "neighbours": s.context_neighbours, "seconds": round(retrieve_seconds, 3),
                                      **({"filter": within.describe()} if within else {})}
        if condensed is not None:
            answer.detail["conversation"] = {**condensed.to_dict(), "history_turns": len(history)}
        answer.detail["model"] = llm.name
        return answer

    def documents(self) -> list[dict]:
        return [] if self.store.discarded else self.store.docs.list_documents()

    def stats(self) -> dict:
        return self.store.stats()

    def check(self) -> list[str]:
        return self.store.check()

    def derived_files(self) -> list[str]:
        return self.store.derived_files()

    # -- the knowledge graph ---------------------------------------------------------------------------------
    def graph_show(self, name: str, limit: int = 20) -> dict:
        """The entity, the chunks about it, and its neighbours, each link with the pages that support it."""
        from ragqa.retrieve.neighbourhood import neighbourhood, resolve_entity

        kg = self.store.graph()
        key = resolve_entity(kg, name, self.name)
        return neighbourhood(kg, self.retriever.entity_index(), self.store.docs, key, limit)

    def graph_export(self, path: str | Path, fmt: str | None = None) -> Path:
        """GraphML (.graphml) or node-link JSON (.json) of the whole graph, per-document chunk lists included."""
        from ragqa.graph.export import export

        return export(self.store.graph(), Path(path), fmt)

    def graph_png(self, name: str, path: str | Path, limit: int = 20) -> Path:
        """A PNG of the entity's neighbourhood as `graph_show` lists it."""
        from ragqa.graph.export import draw_neighbourhood

        shown = self.graph_show(name, limit=limit)
        return draw_neighbourhood(shown["label"], shown["neighbours"], Path(path),
                                  title=f"{shown['label']} ({self.name}): {len(shown['neighbours'])} neighbours")


def summarize_file(path: Path, settings: Settings, *, chain: str = "map_reduce", target_words: int = 200,
                   on_progress: Callable[[str, int, int], None] | None = None, engine: str = "local"):
    """Summarise one .txt/.md/.pdf with the configured LLM; replies cached under the cache dir (resumable)."""
    from ragqa.chains import Budget, Prompts
    from ragqa.llm.cached import ReplyCache
    from ragqa.summarize import summarize_text

    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine '{engine}'", hint="Use local or ray.")
    with IsolatedLoader(settings.parse_memory_mb, settings.parse_timeout_s) as read:
        doc = read(Path(path), password=settings.pdf_password, max_mb=settings.max_file_mb,
                   max_pages=settings.max_pages)
    text = "\n\n".join(p.text for p in doc.text_pages)
    llm = backends.llm(settings)
    if engine == "ray":  # the LLM map steps on Ray actors; budgets, levels and the cache stay here
        from ragqa import ray_engine

        ray_engine.start(settings.ray.address, settings.ray.num_cpus or settings.threads)
        llm = ray_engine.RayLLM(llm, partial(backends.llm, settings), actors=settings.ray.llm_actors)
    budget = Budget.for_llm(llm, max(settings.llm.max_tokens, int(target_words * 1.6)))
    return summarize_text(text, llm, budget=budget, prompts=Prompts.load(settings.prompts_file), chain=chain,
                          target_words=target_words, cache=ReplyCache(settings.cache_dir / "summaries.sqlite"),
                          on_progress=on_progress)


def diagnose(settings: Settings):
    """`ragqa doctor`: backend, model, context window, embedder and vector index, each checked for real."""
    from ragqa.doctor import diagnose as run

    return run(settings)
