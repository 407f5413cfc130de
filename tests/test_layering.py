"""Which package may import which, read from the source with ``ast`` (nothing is imported).

Data flows one way: ``spaces`` -> ``search`` -> ``results``, and the command line (``cli``) on top
wires them together.

* ``results/`` reads what the search leaves behind through the contract only: the one module of
  ``search`` it may import is ``search.schema``; it never imports the command line.
* ``search/`` never imports the command line (``cli``) or the reporting package (``results``).
* ``spaces/`` imports none of the others.
* No two modules import each other, directly or through others (an import inside a function or
  under ``TYPE_CHECKING`` counts, and so does the package ``__init__`` an import runs first).

Every import form counts: ``import a.b``, ``from a.b import c`` (which may load ``a.b.c``),
``from a import b``, relative imports resolved against the importing module's package, imports
inside functions, and ``importlib.import_module("a.b")`` / ``__import__("a.b")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]


class Import(NamedTuple):
    """One module an import statement may load, with where it is written."""

    module: str
    file: Path
    line: int

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line} imports {self.module}"


def module_name(path: Path) -> tuple[str, str]:
    """(dotted module name, its package) of a source file under ROOT."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _absolute(package: str, level: int, module: str | None, path: Path, line: int) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``package``."""
    if level == 0:
        return module or ""
    base = package.split(".") if package else []
    if level - 1 > len(base) or (level - 1 == len(base) and not module):
        raise AssertionError(f"{path.relative_to(ROOT)}:{line}: relative import beyond the top-level package")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _literal_import(node: ast.Call) -> str | None:
    """The module name of ``importlib.import_module("x")`` or ``__import__("x")``, if literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def imports_of(path: Path) -> Iterator[Import]:
    """Every module the file may import. ``from m import a`` yields ``m`` and ``m.a``: ``a`` may be
    a submodule, and whether it is cannot be told from the source alone."""
    _, package = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.level, node.module, path, node.lineno)
            if node.module is not None:  # "from . import x" loads the package itself, nothing to check
                yield Import(base, path, node.lineno)
            for alias in node.names:
                if alias.name != "*":
                    yield Import(f"{base}.{alias.name}" if base else alias.name, path, node.lineno)
        elif isinstance(node, ast.Call):
            name = _literal_import(node)
            if name:
                yield Import(name, path, node.lineno)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


# --- the helpers themselves --------------------------------------------------------------------


def test_imports_are_resolved_in_every_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    engine = tmp_path / "search" / "engine"
    engine.mkdir(parents=True)
    (engine / "__init__.py").write_text("from . import loop\n")
    (engine / "loop.py").write_text(
        "import search.cli.main\n"
        "from ..cli import commands\n"
        "from .. import cli\n"
        "from ..schema import TrialKey\n"
        "from .study import make\n"
        "def later():\n"
        "    from results.dashboard import write_dashboard\n"
        "    import importlib\n"
        "    importlib.import_module('results.export')\n"
    )
    found = {i.module for i in imports_of(engine / "loop.py")}
    assert {
        "search.cli.main",
        "search.cli",
        "search.cli.commands",
        "search.schema",
        "search.schema.TrialKey",
        "search.engine.study",
        "results.dashboard",
        "results.export",
        "importlib",
    } <= found
    assert {i.module for i in imports_of(engine / "__init__.py")} == {"search.engine.loop"}
    assert module_name(engine / "__init__.py") == ("search.engine", "search.engine")
    assert module_name(engine / "loop.py") == ("search.engine.loop", "search.engine")


# --- the rules ---------------------------------------------------------------------------------


def test_results_imports_only_the_schema_from_search() -> None:
    files = sources("results")
    assert files, "no results/ sources found"
    bad = []
    for path in files:
        for imp in imports_of(path):
            if not within(imp.module, "search"):
                continue
            # "from search.schema import X" also yields search.schema.X: a name in the schema.
            if imp.module == "search.schema" or imp.module.startswith("search.schema."):
                continue
            bad.append(str(imp))
    assert bad == [], "results/ may import only search.schema from search:\n" + "\n".join(bad)


def test_results_really_uses_the_schema() -> None:
    """The contract is used, not copied: results names keys, files and the best trial through it."""
    users = {path.name for path in sources("results") if any(imp.module == "search.schema" for imp in imports_of(path))}
    assert {"_common.py", "export.py", "fig_summary.py", "runfiles.py", "storage.py", "dashboard.py"} <= users


def _imports_from(folder: str, *packages: str) -> list[str]:
    files = sources(folder)
    assert files, f"no {folder}/ sources found"
    return [str(imp) for path in files for imp in imports_of(path) if any(within(imp.module, p) for p in packages)]


def test_search_does_not_import_the_command_line_or_results() -> None:
    bad = _imports_from("search", "cli", "results")
    assert bad == [], "search/ must not import cli or results:\n" + "\n".join(bad)


def test_results_does_not_import_the_command_line() -> None:
    bad = _imports_from("results", "cli")
    assert bad == [], "results/ must not import cli:\n" + "\n".join(bad)


def test_spaces_import_none_of_the_other_packages() -> None:
    bad = _imports_from("spaces", "cli", "search", "results")
    assert bad == [], "spaces/ must not import cli, search or results:\n" + "\n".join(bad)


def test_the_command_line_is_on_top() -> None:
    """It wires the others together: it imports the search and the reports, and nothing imports it."""
    used = {imp.module.split(".")[0] for path in sources("cli") for imp in imports_of(path)}
    assert {"search", "results"} <= used


# --- import cycles ------------------------------------------------------------------------------

PACKAGES = ("cli", "search", "spaces", "results")


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the project's modules it may import. An import of ``a.b.c`` also runs ``a`` and
    ``a.b`` first, unless the importer is inside them (its package is running already)."""
    modules = {module_name(path)[0]: path for package in packages for path in sources(package)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        inside = _ancestors(name)
        deps: set[str] = set()
        for imp in imports_of(path):
            target = imp.module
            while target and target not in modules:  # "from m import name": the module m
                target = target.rpartition(".")[0]
            if target and target != name and target not in inside:
                deps.add(target)
                deps |= {a for a in _ancestors(target) if a in modules and a not in inside}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_are_found_through_function_level_imports_and_packages() -> None:
    graph = {"a.x": {"a.y"}, "a.y": {"b"}, "b": {"a.x"}, "c": {"a.x"}}
    assert cycles(graph) == [["a.x", "a.y", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)
