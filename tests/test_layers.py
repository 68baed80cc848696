"""The layers of the code hold: no import cycle, and the contracts of `lint-imports`."""

import subprocess
import sys
from pathlib import Path

import grimp


def cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Every import cycle among `modules` (one per strongly connected component)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(m: str) -> None:
        index[m] = low[m] = counter[0]
        counter[0] += 1
        stack.append(m)
        on.add(m)
        for n in graph.find_modules_directly_imported_by(m) & modules:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycle_in_kdlib_or_the_benchmarks():
    graph = grimp.build_graph("kdlib", "benchmarks")
    modules = {m for m in graph.modules if m.split(".")[0] in ("kdlib", "benchmarks")}
    assert cycles(graph, modules) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for m in ("a", "b", "c", "d"):
        graph.add_module(m)
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        graph.add_import(importer=importer, imported=imported)
    assert cycles(graph, {"a", "b", "c", "d"}) == [["a", "b", "c"]]


def test_the_import_contracts_hold():
    """`lint-imports` (import-linter, configured in pyproject.toml): kdlib never imports
    benchmarks/, tooling > pages > staleness > chapters > the library, chapters independent."""
    exe = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(exe)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 kept, 0 broken" in done.stdout


def test_every_module_of_kdlib_has_its_place_in_the_layers():
    """A new module escapes no contract: every module of kdlib is a layer of the layers
    contract, or inside a package that is one."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    named = {m.strip() for layer in layers for m in layer.split(":")}
    modules = {f"kdlib.{p.stem}" for p in (root / "kdlib").glob("*.py")
               if p.stem not in ("__init__", "__main__")}
    modules |= {f"kdlib.{p.name}" for p in (root / "kdlib").iterdir()
                if (p / "__init__.py").is_file()}
    assert modules - named == set()
