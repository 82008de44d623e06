"""The embedder loads from its wheel; the ONNX and bfloat16 paths give the float32 torch path's vectors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import CACHE, dies_by, fixture
from ragqa.embed.sentence_transformer import SentenceTransformerEmbedder, native_bf16, resolve_backend
from ragqa.errors import ConfigError


def test_onnx_vectors_match_sentence_transformers_torch():
    text = fixture("long/pride_and_prejudice_pg1342_first60000.txt").read_text()[:60000]
    chunks = [text[i:i + 300 + (i % 900)] for i in range(0, 60000, 1500)]  # varied lengths, padding exercised
    onnx = SentenceTransformerEmbedder("minilm", backend="onnx", cache_dir=CACHE / "models").embed_documents(chunks)
    torch_vecs = SentenceTransformerEmbedder("minilm", backend="torch", cache_dir=CACHE).embed_documents(chunks)
    assert onnx.shape == (len(chunks), 384) and onnx.dtype == np.float32
    cos = (onnx * torch_vecs).sum(1)
    assert cos.min() >= 0.999
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, rtol=1e-5)


def test_query_and_documents_share_a_space(embedder):
    docs = embedder.embed_documents(["The cat sat on the mat.", "Quarterly revenue rose 10 percent."])
    q = embedder.embed_query("How much did revenue grow?")
    assert np.argmax(docs @ q) == 1
    assert embedder.embed_documents([]).shape == (0, 384)


def test_bf16_vectors_match_float32():
    """bf16 is what `auto` runs on a CPU with native bfloat16; elsewhere torch emulates it (slow, same numbers)."""
    text = fixture("long/pride_and_prejudice_pg1342_first60000.txt").read_text()[:30000]
    chunks = [text[i:i + 300 + (i % 900)] for i in range(0, 30000, 1500)]
    bf16 = SentenceTransformerEmbedder("minilm", backend="bf16", cache_dir=CACHE)
    vecs = bf16.embed_documents(chunks)
    ref = SentenceTransformerEmbedder("minilm", backend="torch", cache_dir=CACHE).embed_documents(chunks)
    assert vecs.shape == (len(chunks), 384) and vecs.dtype == np.float32
    assert ((vecs * ref).sum(1)).min() >= 0.999
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert bf16.backend == "bf16" and str(next(bf16._sentence_transformer().parameters()).dtype) == "torch.bfloat16"


def test_auto_backend_follows_the_cpu_and_bad_names_fail(monkeypatch, tmp_path):
    from ragqa import cpu

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert resolve_backend("auto", tmp_path) == "bf16" and native_bf16()  # the child's bf16 layer really ran
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f"}))  # AVX-512 without bf16
    assert resolve_backend("auto", tmp_path) == "onnx" and not native_bf16()
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert resolve_backend("auto", tmp_path) == "bf16"
    assert resolve_backend("torch") == "torch"
    with pytest.raises(ConfigError, match="unknown embedding backend"):
        SentenceTransformerEmbedder("minilm", backend="fp8", cache_dir=CACHE)


def test_manifest_records_the_backend_that_ran(tmp_path):
    """`auto` is resolved before it is written down: the manifest says which numbers made the vectors."""
    import json

    from conftest import make_settings
    from ragqa.collection import Collection

    (tmp_path / "a.txt").write_text("The Nile flows north through Egypt into the Mediterranean Sea.")
    coll = Collection.open("m", make_settings(tmp_path), create=True)
    try:
        coll.ingest([tmp_path / "a.txt"])
    finally:
        coll.close()
    manifest = json.loads((coll.store.manifest_path).read_text())
    assert manifest["embed_backend"] == resolve_backend("auto") and manifest["embed_backend"] != "auto"


def test_auto_falls_back_to_onnx_when_the_bf16_path_crashes_in_its_child(monkeypatch, tmp_path):
    """A CPU that advertises bf16 (and AMX) whose VM refuses it: the probe's child dies by SIGSEGV, this
    process carries on with ONNX, and the verdict is kept so the next process does not ask again."""
    from ragqa import cpu
    from ragqa.embed import sentence_transformer as st

    segv, calls = dies_by("SIGSEGV"), []

    def crashing(source, *args, **kw):
        calls.append(source)
        return segv(source)

    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}))
    monkeypatch.setattr(cpu, "run_child", crashing)
    ok, detail = st.bf16_runs(tmp_path)
    assert not ok and "SIGSEGV" in detail
    assert resolve_backend("auto", tmp_path) == "onnx" and len(calls) == 1  # remembered, not asked twice
    embedder = SentenceTransformerEmbedder("minilm", backend="auto", cache_dir=tmp_path / "elsewhere")
    assert embedder.backend == "onnx" and len(calls) == 2  # a cache of its own: asked again, same answer
