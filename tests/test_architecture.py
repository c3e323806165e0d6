"""The shape of the code: short modules, and imports between packages that never go round in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "nerve"
MAX_LINES = 400


def _unit(module: str) -> str:
    """The package a module belongs to: nerve.analysis.compare -> analysis; a top-level module is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "nerve"


def import_graph() -> dict[str, set[str]]:
    """Package -> packages it imports (every import, module level or inside a function)."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(p for p in rel.parts if p != "__init__")
        src = _unit(module)
        graph.setdefault(src, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("nerve."):
                    target = _unit(name)
                    if (SRC / target).is_dir() or (SRC / f"{target}.py").is_file():
                        if target != src:
                            graph[src].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's first occurrence found by depth-first search (empty when the graph is acyclic)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_module_is_longer_than_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def test_no_import_cycle_between_packages():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


STAGES = ("analysis", "study")  # packages of the analysis, methods and study stages
STAGE_MODULES = ("analyze.py", "method_stage.py", "grid.py", "tables.py", "api.py")
MAX_PARAMETERS = 6  # besides a spec (AnalysisSpec, StudySpec, CompareSpec, Sweep, ...)
COMPILED = {"model/crf/viterbi.py"}  # numba kernels take arrays one by one


def wide_functions() -> list[str]:
    """Functions of the stages with more than ``MAX_PARAMETERS`` parameters besides self and a spec."""
    found = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        if not (rel.parts[0] in STAGES or str(rel) in STAGE_MODULES):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls", "spec")]
                if len(names) > MAX_PARAMETERS:
                    found.append(f"{rel}:{node.lineno} {node.name} ({len(names)})")
    return found


def test_no_stage_function_takes_more_than_six_parameters_besides_a_spec():
    assert wide_functions() == []


def test_each_intervention_is_defined_once_in_the_core():
    import nerve.analysis.core as core

    pattern = '("zero", "mean")'
    holders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if pattern in p.read_text(encoding="utf-8") and p.name != "plan.py"]  # plan: the study's default
    assert holders == [], holders
    assert core.INTERVENTIONS.names()[:2] == ("zero", "mean")
