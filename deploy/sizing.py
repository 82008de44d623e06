"""GPU memory for a vLLM server: weights + KV cache + activations, worked for two common models.

    python deploy/sizing.py            # the tables in deploy/README.md (a test keeps them in step)
    python deploy/sizing.py --gib 44.4 --util 0.9 --model llama-3.1-8b --max-model-len 32768

The architecture numbers are the models' config.json values. The activation/overhead figure is an estimate;
vLLM prints the measured split at start-up ("model weights take ... GiB; ... KV Cache is ... GiB").
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class Model:
    name: str
    hf_id: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    trained_context: int
    qkv_bias: bool
    tied_embeddings: bool = False

    @property
    def params(self) -> int:
        """Exact count for a Llama/Qwen2-style decoder: attention, gated MLP, two norms per layer, embeddings."""
        q = self.hidden * self.heads * self.head_dim
        kv = 2 * self.hidden * self.kv_heads * self.head_dim
        o = self.heads * self.head_dim * self.hidden
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        mlp = 3 * self.hidden * self.intermediate
        per_layer = q + kv + o + bias + mlp + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * per_layer + embeddings + self.hidden

    def weight_bytes(self, bytes_per_param: float = 2) -> float:
        return self.params * bytes_per_param

    def kv_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        """2 (K and V) x layers x KV heads x head dim x bytes: what every token in flight holds."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value


MODELS = {
    "qwen2.5-7b": Model("Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", layers=28, hidden=3584, heads=28,
                        kv_heads=4, head_dim=128, intermediate=18944, vocab=152064, trained_context=32768,
                        qkv_bias=True),
    "llama-3.1-8b": Model("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", layers=32, hidden=4096,
                          heads=32, kv_heads=8, head_dim=128, intermediate=14336, vocab=128256,
                          trained_context=131072, qkv_bias=False),
}

# What nvidia-smi reports as total memory, in GiB.
GPUS = {"24 GB (L4, A10G)": 22.49, "80 GB (A100, H100)": 79.65}
OVERHEAD_GIB = 1.5  # activation peak at the default batch, CUDA graphs, CUDA context: 7-8B models, one GPU
UTIL = 0.90
RAG_PROMPT = 4096  # a typical ragqa map or stuff prompt plus its answer, in tokens


@dataclass(frozen=True)
class Fit:
    model: Model
    gpu_gib: float
    util: float
    max_model_len: int
    tp: int = 1

    @property
    def weights_gib(self) -> float:
        return self.model.weight_bytes() / self.tp / GIB

    @property
    def kv_gib(self) -> float:
        return self.gpu_gib * self.util - self.weights_gib - OVERHEAD_GIB

    @property
    def kv_tokens(self) -> int:
        """Tokens of KV cache across the tensor-parallel group (each GPU holds 1/tp of every token)."""
        return int(self.kv_gib * GIB * self.tp // self.model.kv_bytes_per_token())

    @property
    def fits(self) -> bool:
        return self.kv_tokens >= self.max_model_len  # vLLM refuses to start otherwise

    @property
    def full_requests(self) -> float:
        return self.kv_tokens / self.max_model_len

    @property
    def rag_requests(self) -> int:
        return self.kv_tokens // RAG_PROMPT


def suggested_len(model: Model, gpu_gib: float, util: float = UTIL) -> int:
    """The largest power of two up to the trained context that leaves room for two full-length requests."""
    length = model.trained_context
    while length > 2048 and Fit(model, gpu_gib, util, length).full_requests < 2:
        length //= 2
    return length


def model_table() -> str:
    rows = ["| model | layers | KV heads | head dim | params | weights (bf16) | KV cache per token (bf16) | trained context |",
            "|---|---|---|---|---|---|---|---|"]
    for m in MODELS.values():
        kv = m.kv_bytes_per_token()
        rows.append(f"| {m.name} | {m.layers} | {m.kv_heads} | {m.head_dim} | {m.params:,} | "
                    f"{m.weight_bytes() / GIB:.2f} GiB | 2 x {m.layers} x {m.kv_heads} x {m.head_dim} x 2 B = "
                    f"{kv:,} B ({kv // 1024} KiB) | {m.trained_context:,} |")
    return "\n".join(rows)


def fit_table() -> str:
    rows = [f"| GPU | model | KV cache at --gpu-memory-utilization {UTIL} | KV tokens | --max-model-len | "
            f"full-length requests at once | {RAG_PROMPT}-token ragqa prompts at once |",
            "|---|---|---|---|---|---|---|"]
    for gpu, gib in GPUS.items():
        for m in MODELS.values():
            fit = Fit(m, gib, UTIL, suggested_len(m, gib))
            rows.append(f"| {gpu} | {m.name} | {gib:.2f} x {UTIL} - {fit.weights_gib:.2f} - {OVERHEAD_GIB} = "
                        f"{fit.kv_gib:.2f} GiB | {fit.kv_tokens:,} | {fit.max_model_len:,} | "
                        f"{fit.full_requests:.1f} | {fit.rag_requests} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS))
    parser.add_argument("--gib", type=float, help="GPU memory as nvidia-smi reports it, GiB")
    parser.add_argument("--util", type=float, default=UTIL)
    parser.add_argument("--max-model-len", type=int)
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel size (GPUs per model copy)")
    args = parser.parse_args()
    if not (args.model and args.gib):
        print(model_table(), fit_table(), sep="\n\n")  # noqa: T201
        return
    model = MODELS[args.model]
    fit = Fit(model, args.gib, args.util, args.max_model_len or suggested_len(model, args.gib, args.util), args.tp)
    print(f"{model.name} on {args.tp} x {args.gib} GiB at {args.util}: weights {fit.weights_gib:.2f} GiB/GPU, "  # noqa: T201
          f"KV cache {fit.kv_gib:.2f} GiB/GPU = {fit.kv_tokens:,} tokens; --max-model-len {fit.max_model_len:,} "
          f"{'fits' if fit.fits else 'does NOT fit'}: {fit.full_requests:.1f} full-length requests, "
          f"{fit.rag_requests} {RAG_PROMPT}-token prompts at once")


if __name__ == "__main__":
    main()
