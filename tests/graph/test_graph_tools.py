"""`ragqa graph show` / `export`: an entity's neighbours with their supporting pages, GraphML and node-link JSON
that round-trip, and a PNG of the neighbourhood."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import networkx as nx
import pytest

from conftest import CACHE, make_settings
from ragqa.collection import Collection
from ragqa.errors import NotFound
from ragqa.types import Text

TEXTS = [
    Text("Ada Lovelace", "Ada Lovelace worked with Charles Babbage on the Analytical Engine in London."),
    Text("Charles Babbage", "Charles Babbage designed the Analytical Engine. He lived in London."),
    Text("Analytical Engine", "The Analytical Engine was designed by Charles Babbage; Ada Lovelace wrote its "
                              "first program."),
]


@pytest.fixture
def coll(tmp_path):
    c = Collection.open("g", make_settings(tmp_path), create=True)
    c.ingest_texts(TEXTS)
    return c


def test_show_lists_neighbours_with_their_pages(coll):
    shown = coll.graph_show("charles BABBAGE")
    assert shown["entity"] == "charles babbage" and shown["about"] == [("Charles Babbage", 1)]
    links = {(n["entity"], n["relation"]): n for n in shown["neighbours"]}
    assert ("analytical engine", "mentions") in links  # his own page names the engine, which has a page
    assert ("ada lovelace", "mentioned by") in links  # her page names him
    assert ("Ada Lovelace", 1) in links[("ada lovelace", "mentioned by")]["pages"]
    with pytest.raises(NotFound, match="No entity"):
        coll.graph_show("Grace Hopper")


def test_export_round_trips_and_the_cli_draws_a_png(coll, tmp_path):
    g = nx.read_graphml(coll.graph_export(tmp_path / "kg.graphml"))
    assert set(g.nodes) == set(coll.store.graph().g.nodes) and g.number_of_edges() == coll.store.graph().g.number_of_edges()
    assert json.loads(g.nodes["analytical engine"]["about"])  # per-document chunk lists survive as JSON
    data = json.loads(coll.graph_export(tmp_path / "kg.json").read_text())
    assert {n["id"] for n in data["nodes"]} == set(g.nodes)

    env = {**os.environ, "RAGQA_HOME": str(coll.settings.home), "RAGQA_CACHE_DIR": str(CACHE)}
    png = tmp_path / "n.png"
    result = subprocess.run([sys.executable, "-m", "ragqa", "graph", "show", "Analytical Engine", "-c", "g",
                             "--png", str(png)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Charles Babbage" in result.stdout and png.read_bytes()[:4] == b"\x89PNG"
    missing = subprocess.run([sys.executable, "-m", "ragqa", "graph", "show", "Nobody", "-c", "g"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "No entity 'Nobody'" in missing.stderr
