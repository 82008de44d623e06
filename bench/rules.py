"""Each answer-cleaning rule of the chains, on and off, on held-out questions: does it hold up?

The rules were written while reading answers of the sets the docs report; this replays `ragqa eval --answers`
on the held-out samples of `answers_default_*` with one rule switched off at a time. Every rule here acts
after the model has replied (or chooses between replies already made), so the replies come from the eval's
reply cache and a rule costs no LLM call to test; a run with an empty cache pays for the calls once.

- `drop_echo`: map_rerank, and stuff's JSON reading of a factoid (auto's draft), drop a restatement of the question
  before the answer ("X is ..." -> "...").
- `repeats_question`: map_rerank counts an answer made only of the question's words as not found.
- `figure_words`: an answer's figure is quoted as the chunk writes it in words ("7" -> "seven").
- `measure_word_zh`: a figure takes the measure word or unit its Chinese chunk writes after it ("2009" -> "2009年").

    RAGQA_DATA=../shared/data .venv/bin/python bench/rules.py     # writes bench/results/rules.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from ragqa.eval.answers import evaluate_answers
from ragqa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
SETS = {  # name -> (file under the data, selection): the held-out samples of the default chain's results
    "squad": ("qa/squad_v1.1_dev_part_a.json", {"offset": 2500, "sample": 100, "seed": 5}),
    "cmrc": ("chinese/cmrc2018_dev_part_a.json", {"offset": 500, "sample": 100, "seed": 5}),
}
CHAINS = ("auto", "map_rerank")


def switched_off(rule: str) -> list:
    """The patches that turn one rule off."""
    # the modules, not the functions of the same names that ragqa.chains exports
    base, map_rerank, stuff = (importlib.import_module(f"ragqa.chains.{m}") for m in ("base", "map_rerank", "stuff"))

    if rule == "drop_echo":
        return [mock.patch.object(map_rerank, "drop_echo", lambda answer, question: answer),
                mock.patch.object(stuff, "drop_echo", lambda answer, question: answer)]
    if rule == "repeats_question":
        return [mock.patch.object(map_rerank, "repeats_question", lambda answer, question: False)]
    if rule == "figure_words":
        return [mock.patch.object(base, "_in_words", lambda answer, context: None)]
    if rule == "measure_word_zh":
        return [mock.patch.object(base, "with_measure_word", lambda answer, context: None),
                mock.patch.object(map_rerank, "with_measure_word", lambda answer, context: None)]
    raise ValueError(rule)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--rules", default="drop_echo,repeats_question,figure_words,measure_word_zh")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "rules.json")
    args = ap.parse_args()
    result: dict = {"benchmark": "rules", "chains": list(CHAINS), "k": 3, "sets": {}}
    for name in args.sets.split(","):
        rel, selection = SETS[name]
        with tempfile.TemporaryDirectory(prefix="ragqa-bench-rules-") as tmp:
            settings = Settings(home=Path(tmp))
            rows = {}
            for rule in ["none", *args.rules.split(",")]:
                with ExitStack() as stack:
                    for patch in ([] if rule == "none" else switched_off(rule)):
                        stack.enter_context(patch)
                    out = evaluate_answers(DATA / rel, settings, chains=CHAINS, k=3, collection="rules", **selection)
                rows["all rules" if rule == "none" else f"without {rule}"] = {
                    c: {k: out["results"][c][k] for k in ("em", "f1", "llm_calls_per_q")} for c in CHAINS}
                rows[list(rows)[-1]]["cache"] = out["cache"]
                print(name, rule, rows[list(rows)[-1]], file=sys.stderr)
        result["sets"][name] = {"file": rel, "selection": selection, "rows": rows}
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
