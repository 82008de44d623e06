"""ragqa collections inside LangChain and LlamaIndex apps (`ragqa[langchain]`, `ragqa[llama-index]`): retrievers,
vector stores and a query engine over the same collections the CLI and the API use. The core never imports
this package."""
