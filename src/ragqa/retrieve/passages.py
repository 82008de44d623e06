"""Small-to-big: what the LLM reads is wider than what retrieval ranks.

Chunks are sized for the embedder (~256 tokens), and an answer often sits a sentence past a chunk's edge; two hits
from one document that touch are one passage, and read apart they become two candidates that compete (map_rerank
picked "49 km" from one half of a railway's article over "364.6 km" from the other). So each hit is read with
`neighbours` chunks on each side, and hits of one document whose windows touch are merged into one passage, placed
at the rank of its best hit. Retrieval and its metrics stay on chunks; a passage keeps the matched chunk's id and
its parts, so a citation still names one chunk and its page (`Hit.matched`).
"""

from __future__ import annotations

from dataclasses import replace

from ragqa.index.docstore import DocStore
from ragqa.types import Hit, Part


def stitch(rows: list[tuple]) -> tuple[str, tuple[Part, ...]]:
    """Consecutive chunks (ordinal order, with their offsets in the document) as one text, overlaps once, and
    where each chunk's whole text lies in it (parts overlap where the chunks did)."""
    text, end, parts = "", None, []
    for chunk_id, _, page_start, page_end, start, stop, body in rows:
        if end is None:
            at, text = 0, body
        elif start < end:  # the splitter's overlap: keep only what is new
            at = len(text) - min(end - start, len(body))
            text += body[end - start:]
        else:
            at = len(text) + 1
            text += "\n" + body
        parts.append(Part(chunk_id, page_start, page_end, at, at + len(body)))
        end = stop if end is None else max(end, stop)
    return text, tuple(parts)


def with_neighbours(hits: list[Hit], store: DocStore, neighbours: int = 1) -> list[Hit]:
    """Hits as passages: each widened by `neighbours` chunks per side, touching windows of a document merged."""
    if neighbours <= 0 or not hits:
        return hits
    windows = [{"doc_id": h.doc_id, "lo": h.ordinal - neighbours, "hi": h.ordinal + neighbours, "hits": [h]}
               for h in hits]  # rank order; a merged window keeps the place of its best hit
    merged = _merge_touching(windows)
    out = []
    for g in merged:
        rows = store.chunks_between(g["doc_id"], g["lo"], g["hi"])
        best = g["hits"][0]
        if not rows:  # deleted meanwhile: keep the hit as retrieved
            out.append(best)
            continue
        text, parts = stitch(rows)
        out.append(replace(best, text=text, page_start=min(r[2] for r in rows), page_end=max(r[3] for r in rows),
                           score=max(h.score for h in g["hits"]), parts=parts))
    return out


def _merge_touching(groups: list[dict]) -> list[dict]:
    """Merge windows of one document that overlap or touch, until none do (a later hit can bridge two)."""
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(groups):
            for b in groups[i + 1:]:
                if a["doc_id"] == b["doc_id"] and b["lo"] <= a["hi"] + 1 and b["hi"] >= a["lo"] - 1:
                    a["lo"], a["hi"] = min(a["lo"], b["lo"]), max(a["hi"], b["hi"])
                    a["hits"].extend(b["hits"])
                    groups.remove(b)
                    changed = True
                    break
            if changed:
                break
    return groups
