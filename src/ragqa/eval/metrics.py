"""Retrieval metrics over ranked paragraph ids (HippoRAG's convention: recall = share of a question's gold
paragraphs in the top k, averaged over questions)."""

from __future__ import annotations

from collections.abc import Sequence

METRICS = ("recall@1", "recall@2", "recall@5", "recall@10", "all_gold@10", "mrr")


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return len(gold & set(ranked[:k])) / len(gold) if gold else 0.0


def all_gold_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return float(bool(gold) and gold <= set(ranked[:k]))


def reciprocal_rank(ranked: Sequence[str], gold: set[str]) -> float:
    """1 / rank of the first gold paragraph; 0 when none was retrieved."""
    return next((1.0 / rank for rank, pid in enumerate(ranked, 1) if pid in gold), 0.0)


def rank_paragraphs(chunk_pids: Sequence[str]) -> list[str]:
    """Chunks in rank order -> paragraphs in rank order: a paragraph ranks where its best chunk does."""
    return list(dict.fromkeys(chunk_pids))


def summarise(rankings: Sequence[Sequence[str]], golds: Sequence[set[str]]) -> dict[str, float]:
    """{"recall@1", "recall@2", "recall@5", "recall@10", "all_gold@10", "mrr", "n"} over the questions."""
    n = len(rankings)
    if n != len(golds):
        raise ValueError("one gold set per ranking")
    if not n:
        return {**dict.fromkeys(METRICS, 0.0), "n": 0}
    out = {f"recall@{k}": sum(recall_at(r, g, k) for r, g in zip(rankings, golds)) / n for k in (1, 2, 5, 10)}
    out["all_gold@10"] = sum(all_gold_at(r, g, 10) for r, g in zip(rankings, golds)) / n
    out["mrr"] = sum(reciprocal_rank(r, g) for r, g in zip(rankings, golds)) / n
    return {**{k: round(v, 4) for k, v in out.items()}, "n": n}
