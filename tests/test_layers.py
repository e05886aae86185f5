"""The package's floors, read from grimp's import graph (which sees imports inside functions too).

The layers are the import-linter contract in ``pyproject.toml`` (``lint-imports`` checks it in CI); here the
same rule is checked independently, together with what the contract does not say: no import circle
anywhere in the layered code, and nothing inside the package imports the deprecated old module paths, the
root package (whose names load lazily) or the shims' helper.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
#: Package -> its floor (0 at the bottom); packages of one floor do not import each other.
FLOOR = {
    package.strip(): len(CONTRACT["layers"]) - 1 - i
    for i, layer in enumerate(CONTRACT["layers"])
    for package in layer.split("|")
}
IGNORED = {tuple(s.strip() for s in entry.split("->")) for entry in CONTRACT.get("ignore_imports", [])}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("simulation")


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and ".".join(parts[:2]) in FLOOR else None


def layered_imports(graph) -> list[tuple[str, str]]:
    return sorted(
        (m, i)
        for m in graph.modules
        if package_of(m) is not None
        for i in graph.find_modules_directly_imported_by(m)
        if (m, i) not in IGNORED
    )


def test_every_module_of_the_package_is_in_a_layer_or_is_a_deprecated_path(graph):
    loose = {m for m in graph.modules if package_of(m) is None}
    shims = {f"simulation.{p.stem}" for p in (ROOT / "simulation").glob("*.py")
             if "_moved import forward" in p.read_text()}  # fmt: skip
    assert loose - shims == {"simulation", "simulation.__main__", "simulation._moved", "simulation.data"}
    assert len(shims) == 27


def test_imports_go_to_the_own_package_or_a_lower_floor(graph):
    def upward(m: str, i: str) -> bool:
        a, b = package_of(m), package_of(i)
        return a != b and (b is None or FLOOR[b] >= FLOOR[a])

    assert [(m, i) for m, i in layered_imports(graph) if upward(m, i)] == []


def test_nothing_inside_imports_an_old_path_the_root_package_or_the_shims_helper(graph):
    assert [(m, i) for m, i in layered_imports(graph) if package_of(i) is None] == []


def circles(edges: dict[str, list[str]]) -> list[list[str]]:
    """The import circles of ``edges``: Tarjan's strongly connected components with more than one module
    (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, []):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle(graph):
    edges: dict[str, list[str]] = {}
    for m, i in layered_imports(graph):
        edges.setdefault(m, []).append(i)
    assert circles(edges) == []


def test_the_circle_check_finds_circles():
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": [], "e": ["e"], "f": ["a"]}
    assert sorted(circles(edges)) == [["a", "b", "c"], ["e"]]


def function_level_imports() -> list[tuple[str, int, str]]:
    """``(file, line, source line)`` of every import inside a function of the layered packages."""
    out = []
    for path in sorted((ROOT / "simulation").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.count("/") < 2:
            continue  # the root package, its shims and __main__
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import | ast.ImportFrom):
                        out.append((rel, node.lineno, lines[node.lineno - 1]))
    return sorted(set(out))


def test_every_import_inside_a_function_says_why():
    """An import inside a function defers a heavy or optional module for the command line's start-up; the
    line says so in a comment (on it or on the line above)."""
    unexplained = []
    for rel, lineno, line in function_level_imports():
        above = (ROOT / rel).read_text().splitlines()[lineno - 2].strip()
        if "#" not in line and not above.startswith("#"):
            unexplained.append(f"{rel}:{lineno}: {line.strip()}")
    assert unexplained == []


def test_no_layer_switches_on_a_generator_name():
    """A generator's facts are its registry entry (simulation.models.registry): only the generators' own
    modules and the registry compare ``generator`` with a name."""
    own = {"simulation/models/generators.py", "simulation/models/continuous.py", "simulation/models/registry.py"}
    switches = []
    for path in sorted((ROOT / "simulation").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if rel not in own and ("generator ==" in line or "generator !=" in line):
                switches.append(f"{rel}:{lineno}: {line.strip()}")
    assert switches == []


def test_the_generator_registry_lists_every_generator_once():
    from simulation.models import continuous, generators
    from simulation.models.registry import GENERATORS, OPTIONAL_FIELDS
    from simulation.models.scenarios import STUDY_COLUMNS

    assert [g for g, spec in GENERATORS.items() if spec.tied] == list(generators.TIED_GENERATORS)
    assert [g for g, spec in GENERATORS.items() if not spec.tied] == list(continuous.CONTINUOUS_GENERATORS)
    assert set(OPTIONAL_FIELDS) <= set(STUDY_COLUMNS)
    for spec in GENERATORS.values():
        assert set(spec.required) <= set(spec.fields) <= set(OPTIONAL_FIELDS)
        assert (spec.generate is None) == spec.tied  # tied x goes through generate_tied_batch
        assert (spec.latent is not None) == (spec.copula == "elliptical")


def shims() -> dict[str, str]:
    """Old module path -> the module its names now live in (from each shim's ``forward`` call)."""
    out = {}
    for path in sorted((ROOT / "simulation").glob("*.py")):
        m = re.search(r'forward\(__name__, "([\w.]+)"', path.read_text())
        if m:
            out[f"simulation.{path.stem}"] = m.group(1)
    return out


@pytest.mark.parametrize(("old", "new"), sorted(shims().items()))
def test_an_old_module_path_forwards_its_names_with_a_deprecation_warning(old, new):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    public = [n for n, v in vars(new_module).items()
              if not n.startswith("_") and getattr(v, "__module__", None) == new]  # fmt: skip
    assert public, new
    for name in public[:3]:
        with pytest.warns(DeprecationWarning, match=rf"{re.escape(old)}\.{name} is deprecated: import it from {new}"):
            assert getattr(old_module, name) is getattr(new_module, name)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        old_module.no_such_name  # noqa: B018


def test_names_that_left_their_module_are_found_at_the_old_path():
    from simulation.engine import pvalues
    from simulation.statistics import statistic

    with pytest.warns(DeprecationWarning, match="simulation.custom.load is deprecated"):
        assert importlib.import_module("simulation.custom").load is statistic.load
    power = importlib.import_module("simulation.power")  # a package now: its old public names, no warning
    assert power.pvalues_rowwise is pvalues.pvalues_rowwise and power.pvalues_from_null is pvalues.pvalues_from_null


def test_import_simulation_loads_no_numerical_module_until_a_name_is_used():
    code = ("import sys, simulation; heavy = [m for m in ('numba', 'pandas', 'scipy', 'matplotlib') if m in "
            "sys.modules]; print(heavy); simulation.Scenario; print('numba' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
    assert sorted(importlib.import_module("simulation").__all__) == sorted(
        n for n in importlib.import_module("simulation")._HOMES
    )
