"""Evaluation on standard QA files: readers (datasets), metrics, and the retrieval benchmark (retrieval)."""

from ragqa.eval.datasets import EvalSet, Paragraph, Question, load_eval_set
from ragqa.eval.metrics import METRICS, summarise

__all__ = ["EvalSet", "Paragraph", "Question", "load_eval_set", "METRICS", "summarise"]
