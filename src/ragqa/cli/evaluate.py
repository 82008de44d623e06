"""`ragqa eval`: retrieval recall per mode on SQuAD / CMRC / HotpotQA / MuSiQue files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ragqa.cli import render
from ragqa.cli.app import app, settings

ALL_MODES = "dense,lexical,hybrid,graph,auto"


@app.command("eval")
def eval_(
    dataset: Annotated[Path, typer.Argument(help="SQuAD v1.1 / CMRC 2018, HotpotQA or MuSiQue JSON (corpus file "
                                            "<name>_corpus.json beside it is used when present).",
                                            exists=True, dir_okay=False)],
    modes: Annotated[str, typer.Option("--modes", help="Comma-separated retrieval modes.")] = ALL_MODES,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions (all paragraphs "
                                              "are still ingested).")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", help="Write {mode: {recall@k.., mrr, n, timings}} "
                                                   "here.")] = None,
    plot_file: Annotated[Path | None, typer.Option("--plot", help="Write a PNG bar chart here.")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="Ingest into (and reuse) this "
                                                   "collection instead of a fresh temporary one.")] = None,
    answers: Annotated[bool, typer.Option("--answers", help="Answer quality of the chains instead of retrieval "
                                          "recall: EM, F1, cited gold, abstentions, calls, tokens, s/question.")] = False,
    chain: Annotated[str, typer.Option("--chain", help="With --answers: comma-separated chains.")] =
        "stuff,map_reduce,refine,map_rerank,auto",
    retrieval: Annotated[str | None, typer.Option("--retrieval", help="With --answers: the retrieval mode "
                                                  "(default from settings), or `gold`: the question's gold "
                                                  "paragraphs, the chains' reading ceiling.")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="With --answers: chunks per question.")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="With --answers: skip the first N questions.")] = 0,
    sample: Annotated[int | None, typer.Option("--sample", min=1, help="With --answers: a seeded random sample of "
                                               "N questions (after --offset): a held-out set.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="With --sample: the random seed.")] = 0,
    rows_file: Annotated[Path | None, typer.Option("--rows", help="With --answers: write every answer here, one "
                                                   "JSON line per question and chain (question, gold, prediction, "
                                                   "em, f1, cited gold, chain used).")] = None,
) -> None:
    """Retrieval recall@1/2/5/10, all_gold@10 and MRR of each mode (or, with --answers, the chains' EM/F1);
    every paragraph is one ingested document."""
    from ragqa.eval.retrieval import as_issue_json, evaluate_retrieval, plot

    if answers:
        from ragqa.cli.eval_answers import run_answers

        run_answers(dataset, [c.strip() for c in chain.split(",") if c.strip()], limit=limit, json_file=json_file,
                    plot_file=plot_file, collection=collection, retrieval=retrieval, k=k, offset=offset,
                    sample=sample, seed=seed, rows_file=rows_file)
        return

    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    with render.stage_progress() as progress:
        result = evaluate_retrieval(dataset, settings(), modes=mode_list, limit=limit, collection=collection,
                                    on_progress=progress)
    render.retrieval(result)
    if json_file:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(as_issue_json(result), indent=1) + "\n")
        render.wrote(json_file)
    if plot_file:
        render.wrote(plot(result, plot_file))
