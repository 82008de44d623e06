"""`ragqa eval --answers`: answer quality of each chain on the same files as the retrieval eval.

Every question is retrieved once (the collection's default retrieval), and every chain answers from the same
chunks with the same model, so the chains differ only in how they combine them. Scores: SQuAD's official exact
match and F1 (lower-case, no punctuation, no articles, whitespace collapsed; the best over the gold answers),
character-level F1 for Chinese (CMRC's convention); `cited_gold` = the share of answers whose cited sources
include a gold paragraph; abstentions; LLM calls, tokens and seconds per question. LLM replies are cached by
(model, prompt, settings) in SQLite, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import re
import string
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from ragqa import backends
from ragqa.chains import CHAINS, Prompts
from ragqa.cjk import CJK_CHARS, has_cjk
from ragqa.collection import Collection
from ragqa.errors import InputError
from ragqa.eval.datasets import load_eval_set
from ragqa.eval.retrieval import texts_of
from ragqa.fsio import save_figure
from ragqa.ingest import text_document
from ragqa.llm.cached import CachedLLM
from ragqa.settings import Settings
from ragqa.types import Hit

_PIECES = re.compile(f"[{CJK_CHARS}]|[^{CJK_CHARS}]+")
_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_PUNCT = set(string.punctuation) | {"，", "。", "！", "？", "；", "：", "、", "“", "”", "‘", "’", "（", "）", "《", "》",
                                     "「", "」", "【", "】", "—", "…", "·"}

# Without the "(a name, number, date or a few words)" it once carried, which cut answers short ("events" for
# "events and festivals"): the model alone with the gold paragraph, SQuAD dev 100 EM 72 -> 75, held-out 100
# 67 -> 72 (docs/answers.md).
SHORT = " Answer with the shortest phrase from the context that answers the question, not a sentence."
# Chinese sets (CMRC) annotate clauses, not shortest phrases, and "the shortest phrase" next to the question is
# obeyed too well ("1903" for "1903年"): a Chinese question gets a Chinese request for the context's own words,
# and map_rerank's JSON asks for them too (held-out CMRC trial 50: auto EM 28 -> 34).
SHORT_ZH = " 请用上下文中的原文回答，只摘录能回答问题的那部分文字，不要整句话，也不要解释。"
# `--retrieval gold`: the chains read the question's gold paragraphs instead of what retrieval found
GOLD = "gold"
_RERANK_SHORT = "the shortest phrase from the context that answers"
_RERANK_ZH = ("the words of the context that answer, copied exactly (a name, number, date, or the part of a sentence "
              "that answers)")


# -- SQuAD / CMRC metrics -------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD v1.1's official normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Words; Chinese (and other CJK) one character per token and other runs whole, as CMRC's evaluation does."""
    norm = normalize_answer(unicodedata.normalize("NFKC", text))
    out = []
    for word in norm.split():
        out.extend(_PIECES.findall(word) if has_cjk(word) else [word])
    return out


def _em_form(text: str) -> str:
    norm = normalize_answer(unicodedata.normalize("NFKC", text))
    return norm.replace(" ", "") if has_cjk(norm) else norm


def exact_match(prediction: str, gold: str) -> float:
    return float(_em_form(prediction) == _em_form(gold))


def f1(prediction: str, gold: str) -> float:
    pred, ref = _tokens(prediction), _tokens(gold)
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_over(metric: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    return max((metric(prediction, g) for g in golds), default=0.0)


def clean_prediction(text: str) -> str:
    """What is scored: the answer without its citation markers and a trailing full stop."""
    text = _CITATION.sub("", text).strip()
    first = text.split("\n")[0].strip()
    return first.rstrip(".。").strip()


# -- the evaluation -------------------------------------------------------------------------------------------
def short_instruction(language: str) -> str:
    """The sentence asking for a short answer, in the set's language ("zh": Chinese; anything else: English)."""
    return SHORT_ZH if language == "zh" else SHORT


def short_answer_prompts(prompts: Prompts, language: str = "en") -> Prompts:
    """The benchmarks score short answers (SQuAD-style), so every chain is asked for one, right after the
    question (where a small model heeds it: SQuAD 100 stuff EM 52 -> 53 against the end of the system
    prompt) and without stuff's request for [n] markers, which a bare phrase has no room for (-> 59). In refine's
    later steps it follows the question too, as LangChain's copy does: at the prompt's end, "the shortest
    phrase from the context" beat "return the original answer" and swapped right answers for a phrase of the
    next chunk (SQuAD 100 refine 43 -> 45 EM). Chinese sets get `SHORT_ZH` and map_rerank's JSON asks for the
    context's words, not the shortest phrase."""
    short = short_instruction(language)
    out = replace(prompts, cite="", stuff=prompts.stuff.replace("{question}", "{question}" + short),
                  stuff_json=prompts.stuff_json.replace("{question}", "{question}" + short),
                  combine=(prompts.combine.replace("FINAL ANSWER:", short.strip() + "\nFINAL ANSWER:")
                           if "FINAL ANSWER:" in prompts.combine
                           else prompts.combine.replace("{question}", "{question}" + short)),
                  refine_initial=(prompts.refine_initial + short if "{question}" in prompts.refine_initial
                                  else prompts.refine_initial),
                  refine_question=prompts.refine_question.replace("{question}", "{question}" + short),
                  refine=prompts.refine.replace("{question}", "{question}" + short))
    if language == "zh":
        out = replace(out, rerank_json=out.rerank_json.replace(_RERANK_SHORT, _RERANK_ZH))
    return out


def evaluate_answers(
    path: str | Path, settings: Settings, *, chains: Sequence[str] = CHAINS, limit: int | None = None,
    retrieval: str | None = None, k: int | None = None, collection: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None, keep: bool = False, offset: int = 0,
    sample: int | None = None, seed: int = 0,
) -> dict:
    """{"set", "questions", "model", "retrieval", "k", "results": {chain: {"em", "f1", "cited_gold", ...}},
    "answers": [...] (with keep=True)}."""
    unknown = [c for c in chains if c not in CHAINS]
    if unknown:
        raise InputError(f"unknown chain '{unknown[0]}'", hint=f"Known: {', '.join(CHAINS)}.")
    evalset = load_eval_set(path, limit, offset=offset, sample=sample, seed=seed)
    notify = on_progress or (lambda stage, done, total: None)
    retrieval = retrieval or settings.retrieval
    k = k or settings.k
    with ExitStack() as stack:
        run_settings = settings
        if collection is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ragqa-eval-")))
            run_settings = settings.model_copy(update={"home": tmp, "indexes_dir": tmp / "indexes",
                                                       "kg_dir": tmp / "kg"})
        coll = Collection.open(collection or "eval", run_settings, create=True)
        stack.callback(coll.close)
        texts = texts_of(evalset)
        pid_of = {text_document(t).doc_id: p.pid for t, p in zip(texts, evalset.paragraphs)}
        report = coll.ingest_texts(texts, on_progress=lambda p: notify("ingest", p.files_done, p.files_total))
        if report.failed:
            raise InputError(f"{len(report.failed)} paragraphs failed to ingest: {report.failed[0].reason}")
        llm = CachedLLM(backends.llm(settings), settings.cache_dir / "eval-llm.sqlite")
        prompts = short_answer_prompts(Prompts.load(settings.prompts_file), evalset.language)
        rows: dict[str, list[dict]] = {c: [] for c in chains}
        doc_of = {pid: doc_id for doc_id, pid in pid_of.items()}
        for i, q in enumerate(evalset.questions):
            gold = gold_hits(coll, [doc_of[p] for p in q.gold if p in doc_of]) if retrieval == GOLD else None
            for chain in chains:
                started, replays = time.perf_counter(), llm.hits
                answer = coll.ask(q.question, chain=chain, k=k, retrieval=None if gold is not None else retrieval,
                                  hits=gold, llm=llm, prompts=prompts)
                seconds = time.perf_counter() - started
                prediction = "" if answer.abstained else clean_prediction(answer.answer)
                cited = {pid_of.get(s.doc_id, s.doc_id) for s in answer.sources}
                usage = answer.trace.totals()
                rows[chain].append({
                    "qid": q.qid, "question": q.question, "gold": list(q.answers), "prediction": prediction,
                    "em": best_over(exact_match, prediction, q.answers), "f1": best_over(f1, prediction, q.answers),
                    "cited": sorted(cited), "cited_gold": bool(cited & set(q.gold)), "abstained": answer.abstained,
                    "calls": usage["calls"], "tokens": usage["prompt_tokens"] + usage["completion_tokens"], "seconds": seconds, "chain_used": answer.chain,
                    "replayed": llm.hits > replays})
            notify("answer", i + 1, len(evalset.questions))
        results = {chain: summarise(r) for chain, r in rows.items()}
        out = {"set": evalset.name, "language": evalset.language, "questions": len(evalset.questions),
               "paragraphs": len(evalset.paragraphs), "model": llm.name, "retrieval": retrieval, "k": k,
               "neighbours": settings.context_neighbours, "rerank_judge": settings.rerank_judge,
               "selection": {"offset": offset, "sample": sample, "seed": seed, "limit": limit},
               "cache": {"hits": llm.hits, "misses": llm.misses}, "ingest_seconds": round(report.seconds, 2),
               "results": results}
        if keep:
            out["answers"] = rows
        return out


def gold_hits(coll: Collection, doc_ids: list[str]) -> list[Hit]:
    """Every chunk of the question's gold paragraphs, in order: the chains' reading ceiling, with retrieval
    taken out of the error (`--retrieval gold`)."""
    docs = coll.store.docs
    ids = [cid for doc_id in doc_ids for cid in docs.chunk_ids_of(doc_id)]
    return docs.hits(ids, [1.0] * len(ids), GOLD)


def summarise(rows: list[dict]) -> dict:
    """Percentages (0-100) for em, f1, cited_gold, abstained; per-question means for the costs."""
    n = len(rows)
    if not n:
        return {"em": 0.0, "f1": 0.0, "cited_gold": 0.0, "n": 0}
    correct = [r for r in rows if r["em"] == 1.0]
    return {
        "em": round(100 * sum(r["em"] for r in rows) / n, 1),
        "f1": round(100 * sum(r["f1"] for r in rows) / n, 1),
        "cited_gold": round(100 * sum(r["cited_gold"] for r in rows) / n, 1),
        "cited_gold_when_correct": round(100 * sum(r["cited_gold"] for r in correct) / len(correct), 1)
        if correct else None,
        "abstained": round(100 * sum(r["abstained"] for r in rows) / n, 1),
        "n": n,
        "llm_calls_per_q": round(sum(r["calls"] for r in rows) / n, 2),
        "tokens_per_q": round(sum(r["tokens"] for r in rows) / n, 1),
        # seconds mean nothing once a reply came from the cache (a replay costs milliseconds): bench/latency.py
        # measures them on live calls
        "s_per_q": None if any(r.get("replayed") for r in rows) else round(sum(r["seconds"] for r in rows) / n, 2),
        "replayed": sum(bool(r.get("replayed")) for r in rows),
        # which chain `auto` ran, per question (e.g. {"auto:map_rerank": 80, "auto:stuff": 20})
        **({"routes": dict(Counter(r["chain_used"] for r in rows).most_common())}
           if any(r.get("chain_used", "").startswith("auto:") for r in rows) else {}),
    }


def plot(result: dict, path: str | Path) -> Path:
    """Grouped bars: EM, F1 and cited-gold per chain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chains = list(result["results"])
    metrics = ("em", "f1", "cited_gold")
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(chains), 3.6))
    width = 0.8 / len(metrics)
    for j, metric in enumerate(metrics):
        values = [result["results"][c][metric] for c in chains]
        ax.bar([i + j * width for i in range(len(chains))], values, width, label=metric)
    ax.set_xticks([i + width for i in range(len(chains))], chains)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(f"{result['set']} ({result['questions']} q, {result['model']})")
    ax.legend(loc="upper right", fontsize=8)
    return save_figure(fig, path, dpi=120)
