"""`ragqa eval --answers`: the chains' answer quality, as a table, a PNG and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ragqa.cli import render
from ragqa.cli.app import settings


def run_answers(dataset: Path, chains: list[str], *, limit, json_file, plot_file, collection, retrieval, k,
                offset: int = 0, sample: int | None = None, seed: int = 0, rows_file: Path | None = None) -> None:
    from ragqa.eval.answers import evaluate_answers, plot

    with render.stage_progress() as progress:
        result = evaluate_answers(dataset, settings(), chains=chains, limit=limit, collection=collection,
                                  retrieval=retrieval, k=k, on_progress=progress, offset=offset, sample=sample,
                                  seed=seed, keep=rows_file is not None)
    render.answer_quality(result)
    if json_file:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps({**result["results"], "_run": {k: v for k, v in result.items()
                                                                       if k != "results"}}, indent=1) + "\n")
        render.wrote(json_file)
    if rows_file:
        rows_file.parent.mkdir(parents=True, exist_ok=True)
        with rows_file.open("w") as f:
            for chain, rows in result["answers"].items():
                for row in rows:
                    f.write(json.dumps({"chain": chain, **row}, ensure_ascii=False) + "\n")
        render.wrote(rows_file)
    if plot_file:
        render.wrote(plot(result, plot_file))
