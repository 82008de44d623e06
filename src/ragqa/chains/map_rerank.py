"""map_rerank: every chunk answers alone with a 0-100 score; the best wins, ties go to the better-retrieved
chunk, and below a threshold the chain abstains. JSON where the backend can constrain output; otherwise a
tolerant parser. An unparsable reply scores 0 and never breaks the chain.

A model's self-score is not evidence (measured: the 1.5B gave 100/100 to 4 of 5 unrelated paragraphs), so the
choice rests on three signals: the model's explicit verdict that the context holds the answer (`found`, or a
"not mentioned"-style reply), how much of the answer is actually in the chunk (extractive support), and the
self-score, with the retrieval rank as a small prior. When several chunks give different answers with near-equal
evidence (the 1.5B says found/100 for most chunks that name any plausible entity), an optional judge
(`judge=True`, RAGQA_RERANK_JUDGE) shows the model those chunks side by side and lets it choose among their
answers, in two candidate orders; a choice that survives the swap settles the tie, else the retrieval rank does.
Off by default: on SQuAD it cost 1.4 calls per question for +1.5 F1 and no EM (docs/answers.md). Cheaper and
better: a `vote`, another chain's answer over the same chunks (auto passes stuff's), picks among the found
answers the one it agrees with."""

from __future__ import annotations

import re
from collections.abc import Callable

from ragqa.chains.base import CARDINALS, Answer, Budget, Trace, call_many, cite, quote, source_block
from ragqa.chains.prompts import Prompts
from ragqa.cjk import CJK_CHAR, CJK_CHARS, with_measure_word
from ragqa.errors import BudgetError
from ragqa.llm.base import LLM, json_object
from ragqa.types import Hit

NOT_FOUND = "Not found in the documents."
SCHEMA = {"type": "object", "properties": {"found": {"type": "boolean"}, "answer": {"type": "string"},
                                           "score": {"type": "integer", "minimum": 0, "maximum": 100}},
          "required": ["found", "answer", "score"]}  # `found` first: the verdict before the answer
_SCORE = re.compile(r"score\s*[:=]\s*\**\s*(-?\d+)", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_PREFIX = re.compile(r"^\s*(helpful answer|answer)\s*:\s*", re.IGNORECASE)
_NEGATIVE = re.compile(
    r"\b(not (found|mentioned|provided|stated|given|specified|available|included|in the (context|text))|"
    r"no (information|mention)|does(n't| not) (say|mention|contain|provide|state|specify|include)|"
    r"cannot be (determined|found|answered)|(don't|do not) know|unknown|unanswerable)\b|"
    r"未(提及|提到|找到)|没有(提及|提到|相关)|无法(确定|回答)", re.IGNORECASE)
# CJK one character per word; other runs whole but never across CJK ("10号球衣" -> "10", "号", "球", "衣")
_WORD = re.compile(rf"[{CJK_CHARS}]|[^\W_{CJK_CHARS}]+", re.UNICODE)
_FOUND = re.compile(r'"found"\s*:\s*(true|false)', re.IGNORECASE)
LETTERS = "ABCDEFGH"
_LETTER = re.compile(r"\b([A-H])\b")
NEAR = 0.15  # answers within this much evidence of the best are contenders for the judge


def clamp(score: int) -> int:
    return max(0, min(100, score))


def parse(text: str) -> tuple[str, int, bool]:
    """(answer, score, parsed). JSON first (fences stripped; a damaged object repaired only when its last
    field, the score, was written, so a reply cut inside its answer is not read as that cut answer), then
    'Answer ... Score: N'."""
    data = json_object(text, repair=False)
    if data is None:
        data = json_object(text)
        if data is not None and "score" not in data:
            data = None
    if data is not None and "answer" in data:
        try:
            return str(data["answer"]).strip(), clamp(int(float(data.get("score", 0)))), True
        except (ValueError, TypeError):
            pass
    match = _SCORE.search(text)
    if match:
        answer = _PREFIX.sub("", text[: match.start()]).strip()  # multi-line answers kept whole
        return answer, clamp(int(match.group(1))), bool(answer)
    return _PREFIX.sub("", text).strip(), 0, False


def claims_found(raw: str, answer: str) -> bool:
    """The model's verdict: the JSON `found` field where present, else no "not mentioned"-style answer."""
    match = _FOUND.search(raw)
    if match and match.group(1).lower() == "false":
        return False
    return bool(answer.strip()) and not _NEGATIVE.search(answer)


def support(answer: str, context: str) -> float:
    """Share of the answer's words (CJK: characters) that occur in the chunk: 1.0 for an extractive answer."""
    words = [w.lower() for w in _WORD.findall(answer)]
    if not words:
        return 0.0
    vocab = {w.lower() for w in _WORD.findall(context)}
    return sum(w in vocab for w in words) / len(words)


_COPULA_ZH = "是为有在于"
_COPULA_EN = {"is", "was", "are", "were"}


def drop_echo(answer: str, question: str) -> str:
    """The answer without a restatement of the question before it: "锣鼓经是X" for "锣鼓经是什么？" -> "X",
    "The capital of France is Paris" for "What is the capital of France?" -> "Paris". A phrase is asked for, and
    the echo is no part of it (CMRC: "大莱龙铁路是横贯…" lost its exact match). The echo must be at least two
    characters (CJK) or words copied from the question, ending in a copula the question also has (是/为/有/在/
    于: "铁路沿线设有") or followed by 是/为 or is/was/are/were (not by 在/有/于: "邹游在赛季结束后" is a name and
    a preposition). Anything else is left as it is."""
    text = answer.strip()
    if CJK_CHAR.match(text):
        n = max((i for i in range(2, len(text)) if text[:i] in question), default=0)
        if n and text[n - 1] not in _COPULA_ZH and text[n] in "是为":  # 在/有/于 after a name are prepositions
            n += 1
        if n >= 2 and text[n - 1] in _COPULA_ZH:
            rest = text[n:].lstrip("：:，, ")
            return rest if rest else text
        return text
    words = list(_WORD.finditer(text))
    asked = " " + " ".join(w.lower() for w in _WORD.findall(question)) + " "
    n = max((i for i in range(2, len(words)) if " " + " ".join(w.group().lower() for w in words[:i]) + " " in asked),
            default=0)
    if n and words[n].group().lower() in _COPULA_EN and n + 1 < len(words):
        return text[words[n + 1].start():].strip()
    return text


_CHOICE = re.compile(r"\b(?:or|between)\b|还是|或者", re.IGNORECASE)


def repeats_question(answer: str, question: str) -> bool:
    """Every word of the answer (CJK: character) is already in the question, which offers no choice: the chunk
    named the question's subject back ("beta decay" for "What is the effect of beta decay?"), not an answer.
    Counted as not found: on SQuAD, HotpotQA and CMRC the 18 answers this changed were all wrong before and 3
    right after (docs/answers.md). A choice ("A or B?") is answered from the question."""
    return not _CHOICE.search(question) and support(answer, question) == 1.0  # the question as the "context"


def same_answer(a: str, b: str) -> bool:
    """Two chunks' answers that say the same thing once case, punctuation and spacing are ignored."""
    def key(text: str) -> str:
        return " ".join(w.lower() for w in _WORD.findall(text))
    return bool(key(a)) and key(a) == key(b)


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(CARDINALS)} | {"once": "1", "twice": "2"}


def agreement(a: str, b: str) -> int:
    """How closely two readings agree: 3 the same words, 2 the same once number words are digits ("eight" /
    "8"), 1 one inside the other at word boundaries ("Patriots" in "New England Patriots"; CJK by character),
    0 not at all. A stronger agreement outranks a better-scored weaker one."""
    if same_answer(a, b):
        return 3

    def digits(text: str) -> str:
        return " ".join(_NUMBER_WORDS.get(w.lower(), w.lower()) for w in _WORD.findall(text))
    x, y = digits(a), digits(b)
    if not x or not y:
        return 0
    if x == y:
        return 2
    return 1 if f" {x} " in f" {y} " or f" {y} " in f" {x} " else 0


def evidence(score: int, found: bool, supported: float, rank: int) -> float:
    """0..1: the self-score counts fully only for an answer the chunk supports; a 'not found' verdict is 0."""
    if not found:
        return 0.0
    return min(1.0, score / 100 * (0.4 + 0.6 * supported) + 0.1 / (1 + rank))


def locate(hit: Hit, answer: str) -> Hit:
    """The hit narrowed to the chunk of its passage where the answer stands (the whole hit if nowhere)."""
    at = hit.text.find(quote(answer, hit.text)) if hit.parts else -1
    return hit.matched(at if at >= 0 else None)


def contenders(scored: list[dict], abstain_below: int) -> list[dict]:
    """One entry per distinct answer (its best chunk) whose evidence is near the best: the tie to settle."""
    found = sorted((s for s in scored if s["found"]), key=lambda s: (-s["evidence"], s["rank"]))
    if not found or found[0]["evidence"] * 100 < abstain_below:
        return []
    out: list[dict] = []
    for s in found:
        if s["evidence"] >= found[0]["evidence"] - NEAR and not any(same_answer(s["answer"], o["answer"]) for o in out):
            out.append(s)
    return out[:len(LETTERS)]


def parse_choice(text: str, n: int) -> int | None:
    """The chosen candidate's index from {"choice": "B"} or a bare letter; None when there is none in range."""
    data = json_object(text)
    letter = str(data.get("choice", "")).strip().upper()[:1] if data is not None else None
    if not letter:
        match = _LETTER.search(_FENCE.sub("", text.strip()))
        letter = match.group(1) if match else ""
    at = LETTERS.find(letter) if letter else -1
    return at if 0 <= at < n else None


def judge_tie(question: str, options: list[dict], hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts,
          trace: Trace) -> dict | None:
    """The model reads the contenders' chunks together and picks one answer, twice: in evidence order and in
    reverse. A small model leans towards a position (the 1.5B often took the last candidate); a choice that
    survives the swap is kept, otherwise None and the evidence order stands (also when there is no room or no
    parsable choice)."""
    letters = LETTERS[:len(options)]
    reply = ('Reply with JSON: {"choice": the letter of the right candidate}.' if llm.supports_json else
             "Reply with the letter of the right candidate only.")
    schema = {"type": "object", "properties": {"choice": {"type": "string", "enum": list(letters)}},
              "required": ["choice"]}

    def ask(order: list[int]) -> list[dict]:
        shown = [options[i] for i in order]
        context = "\n\n".join(source_block(n, hits[o["rank"]]) for n, o in enumerate(shown, 1))
        candidates = "\n".join(f"{letter}) {o['answer']} (source [{n}])" for n, (letter, o) in
                               enumerate(zip(letters, shown), 1))
        return [{"role": "user", "content": prompts.rerank_judge.format(
            context=context, question=question, candidates=candidates) + reply}]

    orders = [list(range(len(options))), list(reversed(range(len(options))))]
    with trace.step("judge") as step:
        try:
            replies = call_many(llm, [ask(o) for o in orders], budget, step,
                                json_schema=schema if llm.supports_json else None)
        except BudgetError:
            step.detail = {"skipped": "the contenders' chunks do not fit the window"}
            return None
        picks = [parse_choice(c.text, len(options)) for c in replies]
        votes = [order[p] if p is not None else None for order, p in zip(orders, picks)]
        chosen = votes[0] if votes[0] is not None and votes[0] == votes[1] else None
        step.detail = {"candidates": [o["answer"] for o in options], "votes": votes, "choice": chosen}
    return options[chosen] if chosen is not None else None


def _standing(scored: list[dict], abstain_below: int) -> list[dict]:
    """The answers the chunks found with enough evidence not to abstain: the candidates a vote chooses among."""
    return [s for s in scored if s["found"] and s["evidence"] * 100 >= abstain_below]


def voted(scored: list[dict], vote: str, abstain_below: int) -> dict | None:
    """The chunk answer that a second reading (`vote`: stuff's answer from all the chunks together) agrees
    with, among those the chunks found with enough evidence: the strongest agreement, then the most evidence,
    then the better-retrieved chunk. None when the vote agrees with no candidate."""
    agreeing = [(level, s) for s in _standing(scored, abstain_below) if (level := agreement(vote, s["answer"]))]
    if not agreeing:
        return None
    return max(agreeing, key=lambda a: (a[0], a[1]["evidence"], a[1]["score"], -a[1]["rank"]))[1]


def divided(scored: list[dict], abstain_below: int) -> bool:
    """The chunks found different answers above the abstention line: only then can a vote change the answer."""
    found = [s["answer"] for s in _standing(scored, abstain_below)]
    return any(not same_answer(found[0], other) for other in found[1:])


def map_rerank(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
               on_token: Callable[[str], None] | None = None, abstain_below: int = 30, judge: bool = False,
               vote: str | Callable[[], str | None] | None = None) -> Answer:
    """`vote`: another chain's answer to the same question over the same chunks (auto passes stuff's), or a
    callable that makes one, called only when the chunks found different answers. The 1.5B says found/100 for
    most chunks that name any plausible entity, so the evidence often ties across different answers; a reading of
    all chunks together breaks the tie better than the retrieval rank (SQuAD 100: auto 62 -> 68 EM,
    docs/answers.md). The answer stays the chunk's own span; the vote only chooses."""
    trace = Trace()
    use_json = llm.supports_json
    template = prompts.rerank_json if use_json else prompts.rerank
    with trace.step("rerank") as step:
        batch = [prompts.instructed([{"role": "user", "content": template.format(context=source_block(i, h),
                                                                                 question=question)}])
                 for i, h in enumerate(hits, 1)]
        completions = call_many(llm, batch, budget, step, json_schema=SCHEMA if use_json else None)
        scored = []
        for rank, (hit, c) in enumerate(zip(hits, completions)):
            answer, score, ok = parse(c.text)
            answer = drop_echo(answer, question)
            found = ok and claims_found(c.text, answer) and not repeats_question(answer, question)
            supported = support(answer, hit.text) if found else 0.0
            scored.append({"rank": rank, "chunk_id": hit.chunk_id, "score": score, "parsed": ok, "answer": answer,
                           "found": found, "support": round(supported, 3),
                           "evidence": round(evidence(score, found, supported, rank), 4)})
        step.detail = {"json": use_json, "answers": [s["answer"] for s in scored], "scores": [s["score"] for s in scored],
                       "found": [s["found"] for s in scored], "support": [s["support"] for s in scored],
                       "evidence": [s["evidence"] for s in scored], "unparsed": sum(not s["parsed"] for s in scored)}
    if not scored:
        return Answer(NOT_FOUND, [], "map_rerank", trace, abstained=True)
    best = max(scored, key=lambda s: (s["evidence"], s["score"], -s["rank"]))  # ties: the better-retrieved chunk
    offered = vote is not None
    if callable(vote):
        vote = vote() if divided(scored, abstain_below) else None
    chosen = voted(scored, vote, abstain_below) if vote and vote.strip() else None
    if offered:
        trace.steps[-1].detail["vote"] = {"asked": vote is not None, "answer": vote, "agreed": chosen is not None,
                                          "changed": chosen is not None and chosen is not best}
    best = chosen or best
    options = contenders(scored, abstain_below) if judge and chosen is None else []
    if len(options) > 1:
        best = judge_tie(question, options, hits, llm, budget, prompts, trace) or best
    winner = hits[best["rank"]]
    abstained = not best["found"] or best["evidence"] * 100 < abstain_below
    text = NOT_FOUND if abstained else quote(best["answer"], winner.text)
    text = text if abstained else with_measure_word(text, winner.text) or text
    # Every chunk that found the same answer supports it ("Patriots" and "New England Patriots", "2" and "two"
    # too): cite them all, the winner first, each by the chunk (of a passage) where the answer stands.
    agreeing = [locate(hits[s["rank"]], s["answer"]) for s in scored
                if s is not best and s["found"] and not abstained and agreement(s["answer"], best["answer"])]
    winner = winner if abstained else locate(winner, text)
    if on_token:
        on_token(text)
    return Answer(text, cite([winner, *agreeing]), "map_rerank", trace, abstained=abstained,
                  detail={"score": best["score"], "evidence": best["evidence"], "support": best["support"]})
