"""The model alone with each question's gold paragraph(s): how well does it read, under a few short-answer prompts?

No retrieval and no chain: the question's gold paragraphs (in order) are the whole context, one call per question,
greedy, scored with `ragqa eval --answers`'s metrics. This is the model's own reading ceiling on a set, against
which a target like "CMRC EM >= 60" can be checked before blaming retrieval or a chain (`ragqa eval --answers
--retrieval gold` is the same ceiling through the chains themselves). Prompts:

- `anchor`: one user message, "Answer with a short phrase from the context." (the prompt `../shared/anchors.md`
  measured its 10-question numbers with);
- `stuff`: the eval's stuff prompt in stuff's layout (context in the system message, the question and the eval's
  short-answer request, in the set's language, as the user's turn);
- `stuff_listed`: the same with session 18's English request, which listed "(a name, number, date or a few
  words)" (the eval's request since session 19 has no list; `stuff_plain`, kept for the session-18 files,
  is now the same as `stuff` on English sets);
- `zh_user`: one user message in Chinese asking to copy the answer from the context (Chinese sets).

Replies are cached in CACHE_DIR/eval-llm.sqlite like the eval's, so a re-run is free.

    RAGQA_DATA=../shared/data RAGQA_LLM__MODEL=qwen2.5-coder-1.5b .venv/bin/python bench/reader_prompts.py \
        --set chinese/cmrc2018_dev_part_a.json --limit 200 --prompts anchor \
        --out bench/results/reader_prompts_cmrc_dev200_s18.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from machine import machine_info  # noqa: E402

from ragqa import backends  # noqa: E402
from ragqa.chains.prompts import Prompts  # noqa: E402
from ragqa.eval.answers import best_over, clean_prediction, exact_match, f1, short_instruction  # noqa: E402
from ragqa.eval.datasets import load_eval_set  # noqa: E402
from ragqa.llm.cached import CachedLLM  # noqa: E402
from ragqa.settings import Settings  # noqa: E402

DATA = Path(os.environ.get("RAGQA_DATA", ROOT.parent / "shared" / "data"))
PLAIN = " Answer with the shortest phrase from the context that answers the question, not a sentence."
LISTED = (" Answer with the shortest phrase from the context that answers the question (a name, number, date or "
          "a few words), not a sentence.")


def messages(prompt: str, context: str, question: str, language: str) -> list[dict]:
    if prompt == "anchor":
        return [{"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}\n"
                                            "Answer with a short phrase from the context."}]
    if prompt in ("stuff", "stuff_plain", "stuff_listed"):
        request = {"stuff_plain": PLAIN, "stuff_listed": LISTED}.get(prompt, short_instruction(language))
        return [{"role": "system", "content": Prompts().system + "\n----------------\n" + context},
                {"role": "user", "content": question + request}]
    if prompt == "zh_user":
        return [{"role": "user", "content": f"上下文：\n{context}\n\n问题：{question}\n请直接从上下文中摘录答案原文，不要解释。"}]
    raise SystemExit(f"unknown prompt {prompt!r}: anchor, stuff, stuff_plain, stuff_listed, zh_user")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", required=True, help="a file under RAGQA_DATA, e.g. qa/squad_v1.1_dev_part_a.json")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--sample", type=int, default=None, help="a seeded sample after --offset (a held-out set)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", default="anchor,stuff")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--cache", type=Path, default=None, help="the reply cache (default CACHE_DIR/eval-llm.sqlite)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    path = DATA / args.set
    if not path.exists():
        raise SystemExit(f"{path} is absent: set RAGQA_DATA to the shared data folder")
    settings = Settings()
    evalset = load_eval_set(path, args.limit, offset=args.offset, sample=args.sample, seed=args.seed)
    text = {p.pid: p.text for p in evalset.paragraphs}
    llm = CachedLLM(backends.llm(settings), args.cache or settings.cache_dir / "eval-llm.sqlite")
    results = {}
    for prompt in args.prompts.split(","):
        started, rows = time.perf_counter(), []
        for q in evalset.questions:
            context = "\n\n".join(text[g] for g in q.gold)
            reply = llm.complete(messages(prompt, context, q.question, evalset.language),
                                 max_tokens=args.max_tokens, temperature=0.0)
            prediction = clean_prediction(reply.text)
            rows.append((best_over(exact_match, prediction, q.answers), best_over(f1, prediction, q.answers)))
        n = len(rows)
        results[prompt] = {"em": round(100 * sum(r[0] for r in rows) / n, 1),
                           "f1": round(100 * sum(r[1] for r in rows) / n, 1), "n": n,
                           "s_per_q": round((time.perf_counter() - started) / n, 2)}
        print(f"{evalset.name} {prompt}: EM {results[prompt]['em']} F1 {results[prompt]['f1']} (n={n})", flush=True)
    out = {"set": args.set, "model": llm.name, "selection": {"limit": args.limit, "offset": args.offset,
           "sample": args.sample, "seed": args.seed}, "results": results,
           "cache": {"hits": llm.hits, "misses": llm.misses}, "machine": machine_info(("llama-cpp-python",))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
