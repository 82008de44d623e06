"""ragqa: self-hosted RAG question answering over your documents, with cited answers."""

__version__ = "0.1.0"
