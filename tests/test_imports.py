"""The package's import graph is a DAG: engine -> front-ends (cli, batch) -> Blender layer, no circles.

Every module of art_ai_addon is parsed with `ast`; every import counts, also the ones inside functions (a
lazy import still ties two modules together: whatever one of them changes, the other has to follow).
Relative imports are resolved against the module's package, and `from PKG import name` is an edge to the
submodule PKG.name when there is one, else to PKG itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "art_ai_addon"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (a package is its __init__)."""
    out = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def imports_of(name: str, files: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file."""
    tree = ast.parse(files[name].read_text(encoding="utf-8"), filename=str(files[name]))
    here = name if _is_package(name, files) else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in files:  # `import a.b.c` of something that is not a module: its parent
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
                if not (module == PACKAGE or module.startswith(PACKAGE + ".")):
                    continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                add(sub if sub in files else module)
    return found


def graph() -> dict[str, set[str]]:
    files = modules()
    return {name: imports_of(name, files) for name in files}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one circle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return [_circle(g, set(c)) for c in comps]


def _circle(g: dict[str, set[str]], comp: set[str]) -> list[str]:
    """One closed path through a strongly connected component (breadth-first back to its first module)."""
    start = min(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)  # pragma: no cover - a component always has a circle


def test_the_walk_sees_relative_and_function_level_imports():
    g = graph()
    assert len(g) > 30  # the whole package, subpackages included
    assert "art_ai_addon.errors" in g["art_ai_addon.methods"]  # `from .errors import InputError`
    # function-level and two-dot relative: the job runner's lazy `from .. import worker`
    assert "art_ai_addon.worker" in g["art_ai_addon.blender.runner"]
    # and the detector itself finds a circle when there is one
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def describe(g: dict[str, set[str]], found: list[list[str]]) -> str:
    """Each circle, and every import edge inside its group of modules (which are the ones to cut)."""
    lines = []
    for circle in found:
        comp = set(circle)
        lines.append(" -> ".join(circle))
        lines += [f"    {a} imports {b}" for a in sorted(comp) for b in sorted(g[a] & comp)]
    return "\n".join(lines)


# No circle is tolerated; an entry here would be a known circle that the test then insists is still there.
KNOWN: set = set()


def test_import_graph_has_no_cycles():
    g = graph()
    found = cycles(g)
    print(describe(g, found))
    groups = {tuple(sorted(set(c))) for c in found}
    new = [c for c in found if tuple(sorted(set(c))) not in KNOWN]
    assert not new, f"import cycles:\n{describe(g, new)}"
    assert groups == KNOWN, f"cut, remove from KNOWN: {sorted(KNOWN - groups)}"


def test_layers_point_one_way():
    """The engine never imports a front-end or the Blender layer; batch never imports cli; render neither."""
    g = graph()
    engine = {m for m in g if not m.startswith(("art_ai_addon.blender", "art_ai_addon.batch", "art_ai_addon.cli",
                                                "art_ai_addon.__main__"))}
    bad = [(m, t) for m in sorted(engine) for t in sorted(g[m])
           if t.startswith(("art_ai_addon.blender", "art_ai_addon.batch")) or t == "art_ai_addon.cli"]
    batch = [m for m in g if m.startswith("art_ai_addon.batch")]
    bad += [(m, t) for m in batch for t in sorted(g[m]) if t == "art_ai_addon.cli"]
    bad += [(m, t) for t in sorted(g["art_ai_addon.blender.render"])
            if t == "art_ai_addon.cli" or t.startswith("art_ai_addon.batch")
            for m in ["art_ai_addon.blender.render"]]
    assert not bad, bad
