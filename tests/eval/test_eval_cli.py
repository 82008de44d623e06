"""`ragqa eval` as a user runs it, on a small real HotpotQA file: table, JSON report, PNG."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import CACHE, fixture


def test_eval_cli_writes_the_json_and_the_plot(tmp_path):
    questions = json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json").read_text())[:6]
    small = tmp_path / "hotpot_small.json"  # no _corpus.json beside it: paragraphs from the questions' contexts
    small.write_text(json.dumps(questions))
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    env = {**os.environ, "RAGQA_HOME": str(tmp_path / "home"), "RAGQA_CACHE_DIR": str(CACHE)}
    result = subprocess.run([sys.executable, "-m", "ragqa", "eval", str(small), "--modes", "dense,lexical,auto",
                             "--limit", "4", "--json", str(out), "--plot", str(png)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hotpot_small" in result.stdout and "auto" in result.stdout
    data = json.loads(out.read_text())
    assert list(data) == ["dense", "lexical", "auto"]
    for metrics in data.values():
        assert {"recall@1", "recall@2", "recall@5", "recall@10", "all_gold@10", "mrr", "n"} <= set(metrics)
        assert metrics["n"] == 4 and metrics["ingest_seconds"] > 0 and metrics["query_seconds"] >= 0
        assert 0 <= metrics["recall@1"] <= metrics["recall@5"] <= metrics["recall@10"] <= 1
    assert data["auto"]["recall@10"] >= 0.75  # 60 paragraphs: the gold pairs are within reach
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "home" / "indexes").exists()  # a fresh temporary collection, not the user's


def test_eval_cli_refuses_an_unknown_mode(tmp_path):
    small = tmp_path / "s.json"
    small.write_text(json.dumps(json.loads(fixture("qa/hotpotqa_train_sample100_first8_and_2_bridges.json").read_text())[:1]))
    env = {**os.environ, "RAGQA_HOME": str(tmp_path), "RAGQA_CACHE_DIR": str(CACHE)}
    result = subprocess.run([sys.executable, "-m", "ragqa", "eval", str(small), "--modes", "dense,magic"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "unknown retrieval mode 'magic'" in result.stderr
