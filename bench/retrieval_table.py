"""Markdown tables from bench/results/retrieval_*.json (written by `make bench-retrieval`), for docs/retrieval.md."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
COLUMNS = ("recall@1", "recall@2", "recall@5", "recall@10", "all_gold@10", "mrr")


def main() -> None:
    for path in sorted(RESULTS.glob("retrieval_*.json")):
        data = json.loads(path.read_text())
        first = next(iter(data.values()))
        print(f"\n`{path.stem.removeprefix('retrieval_')}`: {first['n']} questions, {first['paragraphs']} paragraphs "
              f"({first['chunks']} chunks), ingested in {first['ingest_seconds']:.0f} s\n")
        print("| mode | R@1 | R@2 | R@5 | R@10 | all_gold@10 | MRR | ms/query |")
        print("|---|---|---|---|---|---|---|---|")
        for mode, m in data.items():
            cells = " | ".join(f"{m[c]:.3f}" for c in COLUMNS)
            print(f"| {mode} | {cells} | {m['ms_per_query']:.0f} |")


if __name__ == "__main__":
    main()
