"""The package's import rules, read from the source (every import, also those inside functions):
data flows one way, so no module imports one of a higher layer, the steps do not import each other, and no
import circle closes (docs/design.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ragqa"

# top-level module or package -> layer; a module may import its own layer's peers only where listed below
LAYERS = {
    "ragqa": 1, "types": 1, "errors": 1, "settings": 1, "fsio": 1, "cjk": 1, "cpu": 1, "threads": 1, "filters": 1,
    "load": 2, "split": 2, "embed": 2, "llm": 2, "index": 2, "graph": 2, "chains": 2,
    "ingest": 3, "retrieve": 3, "summarize": 3, "ray_engine": 3,
    "backends": 4.0, "doctor": 4.1, "collection": 4.2, "eval": 4.3,
    "api": 5.0, "cli": 5.1, "__main__": 5.2, "integrations": 5.3,
}
# the steps that may use another step: the chains and the LLM graph extractor call an LLM; the storage room
# keeps the derived graph; the pipeline's front ends share nothing else
PEERS = {("chains", "llm"), ("graph", "llm"), ("index", "graph"), ("ray_engine", "ingest"),
         ("summarize", "chains")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the ragqa modules it imports (a `from ragqa.x import name` counts as ragqa.x[.name])."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ragqa"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("ragqa"))
        out[name] = {m for m in found if m in modules and m != name}
    return out


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ragqa"


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        here = top(module)
        for target in targets:
            there = top(target)
            if there == here or target == "ragqa":
                continue
            if LAYERS[there] > LAYERS[here]:
                bad.append(f"{module} imports {target}, a higher layer")
            elif int(LAYERS[there]) == int(LAYERS[here]) == 2 and (here, there) not in PEERS:
                bad.append(f"{module} imports {target}: steps do not import each other")
            elif int(LAYERS[there]) == int(LAYERS[here]) == 3 and (here, there) not in PEERS:
                bad.append(f"{module} imports {target}: steps do not import each other")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles between modules (a package's __init__ importing its own submodules is not one)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):  # a package importing its own parts
                continue
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_every_module_has_a_layer():
    assert {top(m) for m in imports()} <= set(LAYERS)


def test_no_module_imports_a_higher_layer_or_a_peer_step():
    assert violations(imports()) == []


def test_no_import_circle():
    assert cycles(imports()) == []


def test_the_checks_catch_an_upward_import_and_a_circle():
    graph = {"ragqa.index.docstore": {"ragqa.collection"}, "ragqa.collection": {"ragqa.index.docstore"},
             "ragqa.load": {"ragqa.split"}}
    assert violations(graph) == ["ragqa.index.docstore imports ragqa.collection, a higher layer",
                                 "ragqa.load imports ragqa.split: steps do not import each other"]
    assert cycles(graph)
