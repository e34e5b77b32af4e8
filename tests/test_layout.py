"""The shape of the package (issue 15): the ground floor imports nothing from above, its modules import each
other without a cycle (lazy imports inside functions included), no module grows past 600 lines, every module
is on the map (docs/architecture.md), and ``framecolor --help`` loads nothing heavy.

Everything is read from the source with :mod:`ast`; nothing is imported, so a test fails on the import line that
breaks the rule, not on a side effect.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "framecolor"
MAX_LINES = 600
ABOVE = ("training", "benchmarks")  # built on framecolor; framecolor never reaches up to them


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name of ``from X import ...`` in ``module`` (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]  # a package's own name is its level-1 anchor
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported(node: ast.AST, module: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """Modules an import statement names: ``import a.b`` -> a.b; ``from a import b`` -> a.b when that is a
    module of the package, else a."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    target = _resolve(node, module, is_package)
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in known else target)
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def counted_imports(tree: ast.Module):
    """Every import statement of a module that can run: at module level and inside functions and methods
    (a lazy import inside a function still ties the two modules together), but not those under
    ``if TYPE_CHECKING:`` (annotations only: never run)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skipped.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped:
            yield node


def test_framecolor_imports_nothing_from_training_or_benchmarks():
    """No import statement anywhere in framecolor/ (module level, inside functions, under TYPE_CHECKING)
    names a module of training/ or benchmarks/. (The ``train``, ``bench`` and ``lineart-pairs`` commands are
    attached by import path strings in cli.LAZY_COMMANDS, Click's lazy-loading group: the product runs them
    when asked, never imports them.)"""
    known = modules()
    offenders = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in imported(node, name, path.name == "__init__.py", known):
                    if target.split(".")[0] in ABOVE:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert not offenders, "\n".join(offenders)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in counted_imports(tree):
            for target in imported(node, name, path.name == "__init__.py", known):
                if target in known and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_inside_framecolor():
    """The modules of framecolor/ form no cycle through their imports, lazy ones included: every import
    statement that can run counts (at module level or inside a function), only those under
    ``if TYPE_CHECKING:`` do not (see :func:`counted_imports`). ``from .pkg import name`` counts as an edge to
    the submodule ``pkg.name`` when there is one, else to the package ``pkg``; importing a submodule is not
    counted as an edge to its parent package's ``__init__`` (Python runs it first, but a package importing its
    own submodules is how it offers its API, not a cycle between layers)."""
    graph = import_graph()
    assert len(graph) > 40 and graph["framecolor.job"] >= {"framecolor.stream", "framecolor.temporal"}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: a graph with a cycle is reported as one."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_600_lines():
    """A module of framecolor/ that grows past 600 lines is a sign it holds more than one thing: split it."""
    long = {str(p.relative_to(ROOT)): n for p in modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_every_module_is_on_the_map():
    """docs/architecture.md, the map of the code, has a line for every module of framecolor/ (a module added or
    moved without updating the map fails here)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(ROOT)) for p in modules().values() if f"`{p.relative_to(ROOT)}`" not in text]
    assert not missing, missing


def test_help_loads_nothing_heavy():
    """``framecolor --help`` imports neither NumPy, OpenCV, PyAV nor torch (the lazy subcommands included),
    so it answers at once on any machine."""
    code = ("import sys; from framecolor.cli import main; sys.argv = ['framecolor', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('numpy', 'cv2', 'av', 'torch') if m in sys.modules]\n"
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
