"""map_rerank: every chunk answers alone with a 0-100 score; the best wins, ties go to the better-retrieved
chunk, and below a threshold the chain abstains. JSON where the backend can constrain output; otherwise a
tolerant parser. An unparsable reply scores 0 and never breaks the chain."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from ragqa.chains.base import Answer, Budget, Trace, call_many, cite, source_block
from ragqa.chains.prompts import Prompts
from ragqa.llm.base import LLM
from ragqa.types import Hit

NOT_FOUND = "Not found in the documents."
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"},
                                           "score": {"type": "integer", "minimum": 0, "maximum": 100}},
          "required": ["answer", "score"]}
_SCORE = re.compile(r"score\s*[:=]\s*\**\s*(-?\d+)", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_PREFIX = re.compile(r"^\s*(helpful answer|answer)\s*:\s*", re.IGNORECASE)


def clamp(score: int) -> int:
    return max(0, min(100, score))


def parse(text: str) -> tuple[str, int, bool]:
    """(answer, score, parsed). JSON first (fences stripped), then 'Answer ... Score: N'."""
    body = _FENCE.sub("", text.strip()).strip()
    start, end = body.find("{"), body.rfind("}")
    if start != -1 and end > start:
        try:
            data = json.loads(body[start:end + 1])
            if isinstance(data, dict) and "answer" in data:
                return str(data["answer"]).strip(), clamp(int(float(data.get("score", 0)))), True
        except (ValueError, TypeError):
            pass
    match = _SCORE.search(text)
    if match:
        answer = _PREFIX.sub("", text[: match.start()]).strip()  # multi-line answers kept whole
        return answer, clamp(int(match.group(1))), bool(answer)
    return _PREFIX.sub("", text).strip(), 0, False


def map_rerank(question: str, hits: list[Hit], llm: LLM, budget: Budget, prompts: Prompts, *,
               on_token: Callable[[str], None] | None = None, abstain_below: int = 30) -> Answer:
    trace = Trace()
    use_json = llm.supports_json
    template = prompts.rerank_json if use_json else prompts.rerank
    with trace.step("rerank") as step:
        batch = [[{"role": "user", "content": template.format(context=source_block(i, h), question=question)}]
                 for i, h in enumerate(hits, 1)]
        completions = call_many(llm, batch, budget, step, json_schema=SCHEMA if use_json else None)
        scored = []
        for rank, (hit, c) in enumerate(zip(hits, completions)):
            answer, score, ok = parse(c.text)
            scored.append({"rank": rank, "chunk_id": hit.chunk_id, "score": score, "parsed": ok, "answer": answer})
        step.detail = {"json": use_json, "scores": [s["score"] for s in scored],
                       "unparsed": sum(not s["parsed"] for s in scored)}
    if not scored:
        return Answer(NOT_FOUND, [], "map_rerank", trace, abstained=True)
    best = max(scored, key=lambda s: (s["score"], -s["rank"]))  # ties: the better-retrieved chunk
    winner = hits[best["rank"]]
    abstained = best["score"] < abstain_below or not best["answer"]
    text = NOT_FOUND if abstained else best["answer"]
    if on_token:
        on_token(text)
    return Answer(text, cite([winner]), "map_rerank", trace, abstained=abstained,
                  detail={"score": best["score"]})
