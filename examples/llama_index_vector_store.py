"""LlamaIndex over a ragqa collection: VectorStoreIndex.from_vector_store(RagqaVectorStore(...)), queried in
hybrid mode (ragqa's dense + lexical); each node names its document and page.

    RAGQA_HOME=.demo RAGQA_COLLECTION=demo .venv/bin/python examples/llama_index_vector_store.py "How many employees did NIKE have?"
"""

import os
import sys

from llama_index.core import VectorStoreIndex

from ragqa.integrations.llama_index import RagqaVectorStore

store = RagqaVectorStore(collection=os.environ.get("RAGQA_COLLECTION", "default"))
index = VectorStoreIndex.from_vector_store(store, embed_model=store.embed_model())
retriever = index.as_retriever(similarity_top_k=3, vector_store_query_mode="hybrid")
for n in retriever.retrieve(sys.argv[1]):
    text = " ".join(n.node.get_content().split())[:100]
    print(f"{n.score:.3f}  {n.node.metadata['document']}, p. {n.node.metadata['page']}: {text}")
