"""A LangChain LCEL chain over a ragqa collection: ragqa retrieves (hybrid + graph, with pages), LangChain's
OpenAI integration asks the embedded model served by llama.cpp's OpenAI-compatible server.

    .venv/bin/python -m llama_cpp.server --model "$(.venv/bin/ragqa models path qwen2.5-coder-1.5b)" --port 8081 &
    RAGQA_HOME=.demo RAGQA_COLLECTION=demo .venv/bin/python examples/langchain_lcel.py "How many employees did NIKE have as of May 31, 2023?"
"""

import os
import sys

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from langchain_openai import ChatOpenAI

from ragqa.integrations.langchain import RagqaRetriever


def sources(docs) -> str:
    return "\n\n".join(f"[{d.metadata['document']}, p. {d.metadata['page']}]\n{d.page_content}" for d in docs)


retriever = RagqaRetriever(collection=os.environ.get("RAGQA_COLLECTION", "default"), k=3)
llm = ChatOpenAI(base_url=os.environ.get("LLM_URL", "http://127.0.0.1:8081/v1"), api_key="local", model="local",
                 max_tokens=int(os.environ.get("MAX_TOKENS", "128")), temperature=0)
prompt = ChatPromptTemplate.from_messages([
    ("system", "Answer from the sources only, briefly, and cite them as [document, p. N]."),
    ("human", "Sources:\n{sources}\n\nQuestion: {question}")])
chain = RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(
    answer={"sources": lambda x: sources(x["docs"]), "question": lambda x: x["question"]} | prompt | llm
    | StrOutputParser())

result = chain.invoke(sys.argv[1])
print(result["answer"])
print("Sources:", "; ".join(f"{d.metadata['document']}, p. {d.metadata['page']}" for d in result["docs"]))
