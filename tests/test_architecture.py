"""Import rules of the package, checked on the source with :mod:`ast` (nothing is imported).

Every ``import`` counts wherever it is written (module level or inside a function: a lazy import
still ties the two modules together), except those under ``if TYPE_CHECKING:``, which never run.

To add a rule, add a row: a package that must not import another to :data:`FORBIDDEN`, a package
whose modules must not import each other in a circle to :data:`ACYCLIC`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: ``(importer, imported, why)``: no module in or under ``importer`` may import ``imported`` or
#: anything under it.
FORBIDDEN = [
    ("emotrace.batch", "emotrace.cli", "batch is an API the CLI calls, not a caller of the CLI"),
    ("emotrace.server", "emotrace.cli", "the server is as thin as the CLI, beside it, not on it"),
]

#: Packages whose modules (the package's ``__init__`` included) import each other in no circle.
#: The whole package is acyclic; the rows below it name the circles once broken, so a failure
#: points at the package where one came back.
ACYCLIC = [
    "emotrace",
    "emotrace.training",
    # onnx_export, quantize and float_twin share the ONNX file edits through onnx_file.
    "emotrace.export",
    # The architectures import the registry; the registry never imports them (models/__init__
    # does, so any import of the package registers them all).
    "emotrace.models",
    # Defaults live in faces.defaults / video.defaults, imported by settings, detectors,
    # tracker and smoother alike; the settings build detectors, never the reverse.
    "emotrace.faces",
    "emotrace.video",
    # app -> routes/websocket -> state -> engine/live/images: downwards only.
    "emotrace.server",
    "emotrace.sessions",
    "emotrace.batch",
]


def module_name(path: Path) -> str:
    """``src/emotrace/training/loop.py`` -> ``emotrace.training.loop`` (a package: its name)."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "emotrace").rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def imports_of(module: str) -> set[str]:
    """The modules ``module`` imports. ``from package import name`` is an import of
    ``package.name`` when that is a module, else of ``package`` (its ``__init__``)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: ``from . import x``, ``from ..y import z``
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            found.add(candidate if candidate in MODULES else base)
    return found


def within(module: str, package: str) -> bool:
    """Whether ``module`` is ``package`` or lies under it."""
    return module == package or module.startswith(package + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports in ``graph`` (``[a, b, ..., a]``), or ``None``."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


@pytest.mark.parametrize(("importer", "imported", "why"), FORBIDDEN, ids=lambda v: str(v))
def test_a_package_does_not_import_what_it_must_not(importer: str, imported: str, why: str) -> None:
    assert any(within(m, importer) for m in MODULES), f"no modules under {importer}"
    offenders = sorted(
        f"{module} imports {target}"
        for module in MODULES
        if within(module, importer)
        for target in imports_of(module)
        if within(target, imported)
    )
    assert not offenders, f"{why}: " + "; ".join(offenders)


@pytest.mark.parametrize("package", ACYCLIC)
def test_the_modules_of_a_package_import_each_other_in_no_circle(package: str) -> None:
    members = [m for m in MODULES if within(m, package)]
    assert len(members) > 1, f"{package} has no modules to check"
    graph = {m: {t for t in imports_of(m) if t in members and t != m} for m in members}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_import_reader_sees_lazy_relative_and_submodule_imports() -> None:
    """The rules above pass vacuously if the reader misses imports: pin what it must see."""
    # A function-level import (the CLI loads training lazily).
    assert "emotrace.training.run" in imports_of("emotrace.cli.train_cmd")
    # ``from emotrace.training import distributed`` is the submodule, not the package.
    assert "emotrace.training.distributed" in imports_of("emotrace.training.loop")
    assert "emotrace.training" not in imports_of("emotrace.training.loop")
    # ``from emotrace.training.x import name`` is the module x.
    assert "emotrace.training.inference" in imports_of("emotrace.training.distributed")
    # Under ``if TYPE_CHECKING:`` only: never imported at run time.
    assert "emotrace.training.config" not in imports_of("emotrace.training.distributed")


def test_find_cycle_reports_the_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None
