"""The embedder loads from its wheel; the ONNX path gives the torch path's vectors."""

from __future__ import annotations

import numpy as np

from conftest import CACHE, data_file
from ragqa.embed.sentence_transformer import SentenceTransformerEmbedder


def test_onnx_vectors_match_sentence_transformers_torch(embedder):
    text = data_file("long/pride_and_prejudice_pg1342.txt").read_text()[:60000]
    chunks = [text[i:i + 300 + (i % 900)] for i in range(0, 60000, 1500)]  # varied lengths, padding exercised
    onnx = embedder.embed_documents(chunks)
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
