"""ragqa's chains as a LlamaIndex query engine: the Response's source_nodes are the cited chunks, with document
and page; its metadata carries the chain and its trace (LLM calls, tokens, seconds).

    RAGQA_HOME=.demo RAGQA_COLLECTION=demo .venv/bin/python examples/llama_index_query_engine.py "How many employees did NIKE have?"
"""

import os
import sys

from ragqa.integrations.llama_index import RagqaQueryEngine

engine = RagqaQueryEngine(collection=os.environ.get("RAGQA_COLLECTION", "default"))
response = engine.query(sys.argv[1])
print(response.response)
for n in response.source_nodes:
    print(f"  [{n.node.metadata['document']}, p. {n.node.metadata['page']}]")
print(f"({response.metadata['chain']}, {response.metadata['trace']['calls']} LLM calls)")
