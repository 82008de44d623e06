"""Document -> token-sized Chunks that remember their document, page span and character offsets.

langchain-text-splitters does the cutting (recursive on paragraph, line and sentence boundaries, Chinese
punctuation included) and measures length with the embedder's own tokenizer, so no chunk is silently
truncated by the model.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from ragqa.types import Chunk, Document

PAGE_JOIN = "\n\n"
# Coarse to fine. Chinese sentence ends carry no space, so they are separators of their own.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]


def joined_text(doc: Document) -> tuple[str, list[int], list[int]]:
    """The document's text pages joined, with the start offset and number of each page."""
    parts, starts, numbers, pos = [], [], [], 0
    for page in doc.text_pages:
        starts.append(pos)
        numbers.append(page.number)
        parts.append(page.text)
        pos += len(page.text) + len(PAGE_JOIN)
    return PAGE_JOIN.join(parts), starts, numbers


class Splitter:
    def __init__(self, tokenizer, chunk_tokens: int = 256, chunk_overlap: int = 32,
                 count_tokens: Callable[[str], int] | None = None):
        """`tokenizer`: a Hugging Face tokenizer; or None and `count_tokens`, for engines that have only that."""
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = min(chunk_overlap, chunk_tokens // 2)
        options = dict(chunk_size=chunk_tokens, chunk_overlap=self.chunk_overlap, separators=SEPARATORS,
                       keep_separator="end", add_start_index=True, strip_whitespace=True)
        if tokenizer is not None:
            self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(tokenizer, **options)
        elif count_tokens is not None:
            self._splitter = RecursiveCharacterTextSplitter(length_function=count_tokens, **options)
        else:
            raise ValueError("Splitter needs a tokenizer or count_tokens")

    def split(self, doc: Document) -> list[Chunk]:
        text, starts, numbers = joined_text(doc)
        chunks: list[Chunk] = []
        for piece in self._splitter.create_documents([text]):
            body = piece.page_content
            start = piece.metadata["start_index"]
            if start < 0:  # the splitter could not locate the piece (should not happen); search from the last one
                start = text.find(body, chunks[-1].char_start if chunks else 0)
            end = start + len(body)
            first = numbers[bisect.bisect_right(starts, start) - 1]
            last = numbers[bisect.bisect_right(starts, max(start, end - 1)) - 1]
            chunks.append(Chunk(doc.doc_id, len(chunks), body, first, last, start, end))
        return chunks
