"""The embedded backend: llama-cpp-python on a GGUF, chat template taken from the GGUF itself."""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragqa import cpu
from ragqa.errors import BackendError, ConfigError
from ragqa.llm.base import Completion, Message
from ragqa.llm.registry import gguf_path
from ragqa.threads import ThreadBudget

log = logging.getLogger(__name__)

_loaded: weakref.WeakSet = weakref.WeakSet()

# Load the model and generate one token, in a child process: a llama.cpp build that uses an instruction this
# machine refuses dies there (SIGSEGV, SIGILL), not in the user's process.
_GENERATE_ONE = r"""
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=1, n_threads_batch=1, verbose=False)
llm.create_completion("The", max_tokens=1, temperature=0.0)
"""


def llama_cpp_libs() -> list[Path]:
    """The installed llama-cpp-python's shared libraries (their identity is the build's identity)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the llamacpp backend needs llama-cpp-python", hint="pip install 'ragqa[llamacpp]'")
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(p for p in root.rglob("*") if p.suffix in (".so", ".dylib", ".dll") or ".so." in p.name)


def verify_build(model: Path, cache_dir: Path | None, *, force: bool = False, run=None) -> str:
    """Trust llama.cpp in this process only after a one-token generation succeeded in a child process.

    The verdict is kept per (library files, model file, CPU flags) under `cache_dir`, so it costs one child
    run per build and model, not one per process. A crash raises BackendError naming the signal, the likely
    CPU feature and the command that rebuilds llama-cpp-python for this CPU."""
    store = Path(cache_dir or Path.home() / ".cache" / "ragqa" / "models") / "llama-cpp-verified.json"
    key = cpu.file_key(*llama_cpp_libs(), model)
    if not force and (known := cpu.remembered(store, key)) and known.get("ok"):
        return known["detail"]
    code, out = (run or cpu.run_child)(_GENERATE_ONE, str(model))
    if code == 0:
        detail = f"a one-token generation with {model.name} ran in a child process"
        cpu.remember(store, key, {"ok": True, "detail": detail})
        return detail
    if code > 0:  # an ordinary Python error in the child: a bad file, a missing library; say what it said
        last = out.splitlines()[-1] if out else f"exit {code}"
        raise BackendError(f"llama.cpp could not load and run {model.name}: {last}",
                           hint="Check the model file (ragqa models --check) and the llama-cpp-python install.")
    amx = cpu.probe_amx()
    cause = (" This CPU advertises AMX but the OS refuses it, and native llama.cpp builds use ggml's AMX "
             "kernels." if amx.advertised and not amx.usable else
             " The build probably uses an instruction set this machine does not execute.")
    raise BackendError(f"llama.cpp crashes on this CPU: a one-token generation with {model.name} was "
                       f"{cpu.describe_exit(code)} in a child process.{cause}", hint=cpu.llama_rebuild_hint(amx=amx))


@atexit.register
def _close_all() -> None:
    """Free models before interpreter teardown: llama-cpp-python's own __del__ runs after its module globals are
    gone and prints a TypeError traceback at every exit otherwise."""
    for llm in list(_loaded):
        llm.close()


class LlamaCppLLM:
    """Loaded on first use; one generation at a time (llama.cpp contexts are not re-entrant)."""

    def __init__(self, model: str = "smollm2-135m", *, n_ctx: int = 8192, threads: int | None = None, seed: int = 0,
                 cache_dir: Path | None = None, budget: ThreadBudget | None = None, prefix_cache: bool = True):
        """`threads` fixes the thread count; None lets the thread budget choose it before every generation
        (all free cores, one while batch work runs beside it). `prefix_cache`: llama.cpp keeps the KV cache of
        the previous prompt and evaluates only what follows the prefix a new prompt shares with it (the chat
        template, the instructions, the question before each chunk); False evaluates every prompt whole (what
        bench/prefix_cache.py compares against)."""
        self.path = gguf_path(model, cache_dir)
        self.cache_dir = cache_dir
        self.name = model if "/" not in model else self.path.stem
        self.requested_ctx = n_ctx
        self.configured_threads = threads
        self.budget = budget
        self.threads = threads or 1  # what the context was created with; adjusted per call
        self.seed = seed
        self.prefix_cache = prefix_cache
        self._llama = None
        self._evaluated: list[int] = []  # prompt tokens llama.cpp evaluated, per generation (see _counting)
        self.last_cached_tokens = 0  # of the latest generation; a stream has no usage to carry it
        self._lease: Path | None = None  # the budget's `llm` lease while a generation runs
        self._lock = threading.RLock()  # re-entrant: complete() holds it and may trigger the first load

    @property
    def llama(self):
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as e:
                raise ConfigError("the llamacpp backend needs llama-cpp-python",
                                  hint="pip install 'ragqa[llamacpp]'") from e
            with self._lock:
                if self._llama is None:
                    verify_build(self.path, self.cache_dir)

                    def load(n_ctx: int):
                        return Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=self.threads,
                                     n_threads_batch=self.threads, seed=self.seed, n_batch=512, verbose=False)

                    llama = load(self.requested_ctx)
                    trained = llama._model.n_ctx_train()
                    if 0 < trained < self.requested_ctx:  # never allocate past what the model was trained on
                        del llama
                        llama = load(trained)
                    self._count_evaluations(llama)
                    self._llama = llama
                    _loaded.add(self)
        return self._llama

    def _count_evaluations(self, llama) -> None:
        """Record how many prompt tokens each generation really evaluates: llama-cpp-python's `generate` skips
        the prefix the KV cache already holds and passes the rest to `eval` in one call, then one token per call
        while it decodes. The first `eval` of a generation is its prompt."""
        evaluate = llama.eval

        def counting(tokens):
            if self._evaluated and self._evaluated[-1] < 0:  # the first eval since `_fresh_generation`
                self._evaluated[-1] = len(tokens)
            return evaluate(tokens)

        llama.eval = counting

    def _fresh_generation(self, llama) -> None:
        if not self.prefix_cache:
            llama.reset()  # nothing kept: the whole prompt is evaluated again
        self._evaluated.append(-1)

    def _cached(self, prompt_tokens: int) -> int:
        evaluated = self._evaluated.pop() if self._evaluated else -1
        return max(0, prompt_tokens - evaluated) if evaluated >= 0 else prompt_tokens  # -1: the prompt was cached

    def load(self) -> None:
        """Verify and load the model now (it loads on first use otherwise)."""
        _ = self.llama

    def close(self) -> None:
        with self._lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            try:
                llama.close()
            except Exception:  # noqa: BLE001 - best effort at exit; the process is ending anyway
                log.debug("closing %s failed", self.name, exc_info=True)

    def _set_threads(self) -> None:
        """Ask the budget before each generation: the right count now, not the one at load time."""
        if self.budget is None:
            return
        want = self.budget.llm_threads(self.configured_threads)
        if want != self.threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self.llama._ctx.ctx, want, want)
            self.threads = want
        if self._lease is not None:
            self._lease.write_text(str(self.threads))

    @contextmanager
    def _generating(self) -> Iterator[None]:
        """Thread count chosen, and advertised to other processes for as long as this generation runs."""
        if self.budget is None:
            yield
            return
        with self.budget.generating(self.threads) as lease:
            self._lease = lease
            try:
                self._set_threads()
                yield
            finally:
                self._lease = None

    @property
    def threads_in_use(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_n_threads(self.llama._ctx.ctx))

    @property
    def context_window(self) -> int:
        return self.llama.n_ctx()

    @property
    def supports_json(self) -> bool:
        return True  # grammar-constrained JSON from a schema

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_messages(self, messages: list[Message]) -> int:
        return len(self.llama.tokenize(self._render(messages).encode("utf-8"), add_bos=False, special=True))

    def _render(self, messages: list[Message]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if not hasattr(self, "_formatter"):
            meta = self.llama.metadata
            template = meta.get("tokenizer.chat_template")
            if not template:
                return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
            eos = self.llama.detokenize([self.llama.token_eos()]).decode(errors="ignore")
            bos = self.llama.detokenize([self.llama.token_bos()]).decode(errors="ignore")
            self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        return self._formatter(messages=messages).prompt

    def complete(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
                 stop: list[str] | None = None, json_schema: dict | None = None) -> Completion:
        kwargs = {}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        with self._lock, self._generating():
            llama = self.llama
            self._fresh_generation(llama)
            try:
                out = llama.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature,
                                                   stop=stop, seed=self.seed, **kwargs)
            except ValueError as e:  # e.g. "Requested tokens exceed context window"
                self._evaluated.clear()
                raise BackendError(f"llama.cpp refused the prompt: {e}") from e
            usage = out.get("usage", {})
            cached = self.last_cached_tokens = self._cached(usage.get("prompt_tokens", 0))
        choice = out["choices"][0]
        return Completion(choice["message"]["content"] or "", usage.get("prompt_tokens", 0),
                          usage.get("completion_tokens", 0), choice.get("finish_reason") or "stop", cached)

    def complete_many(self, batch: list[list[Message]], **kw) -> list[Completion]:
        return [self.complete(messages, **kw) for messages in batch]

    def stream(self, messages: list[Message], *, max_tokens: int, temperature: float = 0.0,
               stop: list[str] | None = None, json_schema: dict | None = None) -> Iterator[str]:
        kwargs = {}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        with self._lock, self._generating():
            llama = self.llama
            self._fresh_generation(llama)
            try:
                for n, part in enumerate(llama.create_chat_completion(
                        messages=messages, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=self.seed,
                        stream=True, **kwargs)):
                    delta = part["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
                    if n % 8 == 7:  # batch work may have resumed (or paused) since the last look
                        self._set_threads()
            finally:
                self.last_cached_tokens = self._cached(self.count_messages(messages))
