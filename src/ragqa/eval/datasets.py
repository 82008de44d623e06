"""Readers for SQuAD v1.1 / CMRC 2018 (SQuAD format), HotpotQA and MuSiQue in their original JSON.

Each returns the same shape, so retrieval recall and answer quality share them: the distinct paragraphs (one
document each) and the questions with their gold paragraph ids and gold answers.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from ragqa.cjk import has_cjk
from ragqa.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Paragraph:
    pid: str
    title: str
    text: str  # what is ingested (HotpotQA/MuSiQue: the title line, then the paragraph)


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    gold: tuple[str, ...]  # pids of the paragraphs that hold the evidence
    answers: tuple[str, ...]  # gold answer strings (first = canonical)
    kind: str = ""  # hotpotqa: bridge | comparison; musique: 2hop, 3hop, 4hop; squad: single


@dataclass
class EvalSet:
    name: str
    format: str  # squad | hotpotqa | musique
    paragraphs: list[Paragraph]
    questions: list[Question]
    language: str = "en"  # "zh" when the questions are Chinese
    notes: list[str] = field(default_factory=list)

    def limit(self, n: int | None) -> EvalSet:
        """The first `n` questions (the corpus stays whole, so the task stays as hard)."""
        return self.select(limit=n)

    def select(self, *, offset: int = 0, limit: int | None = None, sample: int | None = None,
               seed: int = 0) -> EvalSet:
        """Questions after the first `offset`, then a seeded random `sample` of them (kept in file order), then the
        first `limit`: `offset=100, sample=100` is a held-out set for settings tuned on the first 100."""
        questions = self.questions[offset:]
        if sample is not None and sample < len(questions):
            keep = sorted(random.Random(seed).sample(range(len(questions)), sample))
            questions = [questions[i] for i in keep]
        if limit is not None:
            questions = questions[:limit]
        if len(questions) == len(self.questions):
            return self
        return EvalSet(self.name, self.format, self.paragraphs, questions, self.language, self.notes)


def load_eval_set(path: str | Path, limit: int | None = None, *, offset: int = 0, sample: int | None = None,
                  seed: int = 0) -> EvalSet:
    """Reads the file in its original format, picked by its structure; HotpotQA and MuSiQue take their paragraphs
    from `<name>_corpus.json` beside the file when present, else from the questions' own contexts."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise InputError(f"{path} is not JSON: {e}") from e
    corpus_path = path.with_name(path.stem + "_corpus.json")
    corpus = json.loads(corpus_path.read_text(encoding="utf-8")) if corpus_path.exists() else None
    name = path.stem
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        out = _squad(name, data)
    elif isinstance(data, list) and data and isinstance(data[0], dict) and "supporting_facts" in data[0]:
        out = _hotpotqa(name, data, corpus)
    elif (isinstance(data, list) and data and isinstance(data[0], dict) and "paragraphs" in data[0]
          and "question_decomposition" in data[0]):
        out = _musique(name, data, corpus)
    else:
        raise InputError(f"{path}: not SQuAD, CMRC, HotpotQA or MuSiQue JSON",
                         hint="Pass the original file (SQuAD v1.1 format, HotpotQA or MuSiQue).")
    if corpus is not None:
        out.notes.append(f"paragraphs from {corpus_path.name}")
    blank = [q.qid for q in out.questions if not q.question.strip()]
    if blank:  # the CMRC 2018 trial file has two; one would stop a whole run with "empty query"
        out.questions = [q for q in out.questions if q.question.strip()]
        out.notes.append(f"skipped {len(blank)} question(s) with no text: {', '.join(blank[:5])}")
        log.warning("%s: %s", path.name, out.notes[-1])
    return out.select(offset=offset, limit=limit, sample=sample, seed=seed)


def _squad(name: str, data: dict) -> EvalSet:
    """SQuAD v1.1 and CMRC 2018: every distinct `context` is a paragraph titled by its article."""
    paragraphs: list[Paragraph] = []
    pid_of: dict[str, str] = {}
    questions: list[Question] = []
    for article in data["data"]:
        title = str(article.get("title", "")).replace("_", " ")
        for para in article["paragraphs"]:
            context = para["context"]
            if context not in pid_of:
                pid_of[context] = f"p{len(paragraphs)}"
                paragraphs.append(Paragraph(pid_of[context], title, context))
            for qa in para["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                questions.append(Question(str(qa["id"]), qa["question"], (pid_of[context],), answers, "single"))
    language = "zh" if sum(has_cjk(q.question) for q in questions[:50]) > 25 else "en"
    return EvalSet(name, "squad", paragraphs, questions, language)


def _hotpotqa(name: str, data: list, corpus: dict | None) -> EvalSet:
    """HotpotQA: a paragraph is a Wikipedia title with its sentences; gold = the supporting facts' titles."""
    raw: dict[str, list[str]] = dict(corpus) if corpus is not None else {}
    if corpus is None:
        for q in data:
            for title, sentences in q["context"]:
                raw.setdefault(title, sentences)
    paragraphs = [Paragraph(title, title, f"{title}\n{''.join(sentences).strip()}") for title, sentences in raw.items()]
    questions = []
    for q in data:
        gold = tuple(dict.fromkeys(t for t, _ in q["supporting_facts"]))
        missing = [t for t in gold if t not in raw]
        if missing:
            raise InputError(f"HotpotQA question {q['_id']}: supporting paragraph {missing[0]!r} not in the corpus")
        questions.append(Question(q["_id"], q["question"], gold, (q.get("answer", ""),), q.get("type", "")))
    return EvalSet(name, "hotpotqa", paragraphs, questions)


def _musique(name: str, data: list, corpus: list | None) -> EvalSet:
    """MuSiQue: paragraphs from the corpus file (title + text); gold = the question's supporting paragraphs."""
    if corpus is None:
        corpus = [{"title": p["title"], "text": p["paragraph_text"]} for q in data for p in q["paragraphs"]]
    paragraphs: list[Paragraph] = []
    pid_of: dict[tuple[str, str], str] = {}
    for item in corpus:
        key = (item["title"], item["text"])
        if key not in pid_of:
            pid_of[key] = f"m{len(paragraphs)}"
            paragraphs.append(Paragraph(pid_of[key], item["title"], f"{item['title']}\n{item['text'].strip()}"))
    questions = []
    for q in data:
        gold = []
        for p in q["paragraphs"]:
            if p.get("is_supporting"):
                key = (p["title"], p["paragraph_text"])
                if key not in pid_of:
                    raise InputError(f"MuSiQue question {q['id']}: a supporting paragraph is not in the corpus")
                gold.append(pid_of[key])
        answers = (q.get("answer", ""), *q.get("answer_aliases", []))
        questions.append(Question(q["id"], q["question"], tuple(dict.fromkeys(gold)), answers, q["id"].split("__")[0]))
    return EvalSet(name, "musique", paragraphs, questions)
