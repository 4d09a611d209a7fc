"""The shape of the code, read from the source with ``ast`` (nothing is imported): no import cycles (imports
inside functions count), dependencies point one way (pages -> explain -> models), pages use no private names
of the library, and no library function grows past the size a reader takes in at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "explain", "pages")
# CLI entry modules sit above both packages and may import either (docs/ARCHITECTURE.md)
CLI_MODULES = {"models.predict", "models.evaluate", "models.train", "models.prepare", "models.calibration",
               "models.crosssource", "models.catalog", "explain.shapley_cache"}
MAX_FUNCTION_LINES = 80


def module_files(root: Path = REPO) -> dict[str, Path]:
    mods = {".".join(p.relative_to(root).with_suffix("").parts): p
            for base in PACKAGES for p in (root / base).rglob("*.py") if ".venv" not in p.parts}
    mods["streamlit_app"] = root / "streamlit_app.py"
    return mods


def is_cli(module: str) -> bool:
    parts = module.split(".")
    return module in CLI_MODULES or parts[-1] in ("__main__", "cli") or "cli" in parts[:-1]


def imported(module: str, node: ast.AST) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for an import statement, relative imports resolved."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            pkg = parts if parts[-1] == "__init__" else parts[:-1]
            pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
            base = ".".join([p for p in pkg if p != "__init__"] + ([base] if base else []))
        return [(base, [a.name for a in node.names])]
    return []


def import_graph(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[str], list[str]]:
    """(edges between our modules, forbidden-direction imports, private names imported by pages)."""
    edges, forbidden, private = {}, [], []
    for m, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target, names in imported(m, node):
                top = target.split(".")[0]
                if m.startswith("models") and not is_cli(m) and top in ("explain", "pages", "streamlit"):
                    forbidden.append(f"{m} -> {target}")
                if m.startswith("explain") and top in ("pages", "streamlit"):
                    forbidden.append(f"{m} -> {target}")
                if m.startswith("pages") and top in ("models", "explain"):
                    private += [f"{m}: {target}.{n}" for n in names if n.startswith("_")]
                for cand in [target, *(f"{target}.{n}" for n in names)]:
                    if cand in mods and cand != m:
                        deps.add(cand)
        edges[m] = deps
    return edges, forbidden, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), i.e. the import cycles.
    Package ``__init__`` modules are left out: importing ``a.b`` runs ``a/__init__`` but does not depend on it."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w.endswith("__init__"):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index and not v.endswith("__init__"):
            visit(v)
    return out


def long_functions(mods: dict[str, Path], root: Path = REPO, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for m, path in mods.items():
        if m.startswith("pages") or m == "streamlit_app":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit:
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph(module_files())


def test_no_import_cycles(graph):
    edges, _, _ = graph
    assert cycles(edges) == []


def test_dependencies_point_one_way(graph):
    _, forbidden, _ = graph
    assert forbidden == []


def test_pages_use_no_private_library_names(graph):
    _, _, private = graph
    assert private == []


def test_no_library_function_over_80_lines():
    assert long_functions(module_files()) == []


def test_models_is_split_by_role():
    subpackages = {p.parent.name for p in (REPO / "models").glob("*/__init__.py")}
    assert {"detectors", "data", "training", "scoring", "analysis"} <= subpackages
    loose = {p.stem for p in (REPO / "models").glob("*.py")} - {"__init__", "_quiet"}
    assert {f"models.{s}" for s in loose} <= CLI_MODULES  # only CLI entry modules sit at the top


# --- the checker itself finds what it guards against -----------------------------------------------------


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_checks_catch_a_cycle_a_wrong_direction_and_a_private_import(tmp_path):
    write(tmp_path, "models/__init__.py", "")
    write(tmp_path, "models/a.py", "def f():\n    from models.b import g  # inside a function: still counts\n")
    write(tmp_path, "models/b.py", "from models import a\n")
    write(tmp_path, "models/c.py", "import streamlit as st\nfrom explain.x import y\n")
    write(tmp_path, "models/predict.py", "from explain.x import y  # a CLI entry module may\n")
    write(tmp_path, "explain/__init__.py", "")
    write(tmp_path, "explain/x.py", "def y():\n    import pages.p\n")
    write(tmp_path, "pages/p.py", "from models.a import _hidden\n")
    write(tmp_path, "streamlit_app.py", "")
    write(tmp_path, "models/long.py", "def f():\n" + "    x = 1\n" * 90)
    mods = module_files(tmp_path)
    edges, forbidden, private = import_graph(mods)
    assert cycles(edges) == [["models.a", "models.b"]]
    assert sorted(forbidden) == ["explain.x -> pages.p", "models.c -> explain.x", "models.c -> streamlit"]
    assert private == ["pages.p: models.a._hidden"]
    assert [s.split(" ")[1] for s in long_functions(mods, tmp_path) if "long.py" in s] == ["f"]
