"""`ragqa eval --answers`: the chains' answer quality, as a table, a PNG and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ragqa.cli.main import settings
from ragqa.cli.render import stage_progress

out = Console(width=None if Console().is_terminal else 160)


def run_answers(dataset: Path, chains: list[str], *, limit, json_file, plot_file, collection, retrieval, k,
                offset: int = 0, sample: int | None = None, seed: int = 0, rows_file: Path | None = None) -> None:
    from ragqa.eval.answers import evaluate_answers, plot

    with stage_progress() as progress:
        result = evaluate_answers(dataset, settings(), chains=chains, limit=limit, collection=collection,
                                  retrieval=retrieval, k=k, on_progress=progress, offset=offset, sample=sample,
                                  seed=seed, keep=rows_file is not None)
    table = Table("chain", "EM", "F1", "cited gold %", "cited gold | correct %", "abstained %", "n", "calls/q",
                  "tokens/q", "s/q", title=f"{result['set']}: {result['questions']} questions, model {result['model']}, "
                  f"retrieval {result['retrieval']} k={result['k']} (cache: {result['cache']['hits']} hits, "
                  f"{result['cache']['misses']} new calls)")
    for chain, m in result["results"].items():
        table.add_row(chain, f"{m['em']:.1f}", f"{m['f1']:.1f}", f"{m['cited_gold']:.1f}",
                      "-" if m["cited_gold_when_correct"] is None else f"{m['cited_gold_when_correct']:.1f}",
                      f"{m['abstained']:.1f}", str(m["n"]), f"{m['llm_calls_per_q']:.1f}", f"{m['tokens_per_q']:.0f}",
                      f"{m['s_per_q']:.1f}")
    out.print(table)
    if json_file:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps({**result["results"], "_run": {k: v for k, v in result.items()
                                                                       if k != "results"}}, indent=1) + "\n")
        out.print(f"wrote {json_file}")
    if rows_file:
        rows_file.parent.mkdir(parents=True, exist_ok=True)
        with rows_file.open("w") as f:
            for chain, rows in result["answers"].items():
                for row in rows:
                    f.write(json.dumps({"chain": chain, **row}, ensure_ascii=False) + "\n")
        out.print(f"wrote {rows_file}")
    if plot_file:
        out.print(f"wrote {plot(result, plot_file)}")
