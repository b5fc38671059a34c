"""The package's shape: layers without cycles or upward imports, modules, classes and functions
within their sizes, and every documented public name importable."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import tracker
from tracker import _layers

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tracker"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60

# layers ---------------------------------------------------------------------------------------


def test_every_module_of_the_package_is_in_a_layer() -> None:
    for module in _layers.modules():
        _layers.layer_of(module)  # raises KeyError naming the module


def test_the_import_graph_has_no_cycle_and_no_upward_import() -> None:
    edges = _layers.graph()
    assert len(edges) > 50  # the graph was read
    assert sum(len(targets) for targets in edges.values()) > 100
    assert _layers.violations(edges) == []


def test_the_layer_check_finds_an_upward_import_and_a_cycle() -> None:
    """The checker itself: a store module importing the facade, and a loop between two modules."""
    edges = {
        "tracker.store.codec": {"tracker.facade.tracker"},
        "tracker.facade.tracker": set(),
        "tracker.sql.rows": {"tracker.sql.models"},
        "tracker.sql.models": {"tracker.sql.rows"},
    }
    found = _layers.violations(edges)
    assert found == [
        "upward: tracker.store.codec (store) imports tracker.facade.tracker (facade)",
        "cycle: tracker.sql.models -> tracker.sql.rows",
    ]


def test_function_local_and_type_checking_imports_are_in_the_graph() -> None:
    edges = _layers.graph()
    assert "tracker.read.browser" in edges["tracker.sql.repository"]  # under TYPE_CHECKING only
    assert "tracker.sql.browse" in edges["tracker.sql.repository"]  # inside a method only


# sizes ----------------------------------------------------------------------------------------


def oversized() -> set[str]:
    """Every module, class and function of tracker/ over its limit, as "kind path:name"."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            found.add(f"module {relative}")
        found |= _oversized_in(ast.parse(text), relative, "")
    return found


def _oversized_in(node: ast.AST, relative: str, prefix: str) -> set[str]:
    found = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + child.name
            lines = (child.end_lineno or child.lineno) - child.lineno + 1
            is_class = isinstance(child, ast.ClassDef)
            kind, limit = ("class", MAX_CLASS_LINES) if is_class else ("function", MAX_FUNCTION_LINES)
            if lines > limit:
                found.add(f"{kind} {relative}:{name}")
            found |= _oversized_in(child, relative, name + ".")
        else:
            found |= _oversized_in(child, relative, prefix)
    return found


def test_no_module_over_500_lines_no_class_over_300_no_function_over_60() -> None:
    assert oversized() == set()


def test_the_size_check_counts_methods_and_nested_functions() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    tree = ast.parse(f"class A:\n    def f(self):\n        def g():\n{body.replace('    ', '            ')}\n")
    assert _oversized_in(tree, "m.py", "") == {"function m.py:A.f", "function m.py:A.f.g"}


def test_no_two_classes_of_the_package_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(path.relative_to(ROOT).as_posix())
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


# public names ---------------------------------------------------------------------------------


def test_every_name_in_tracker_all_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from tracker import *", namespace)  # noqa: S102 - the star import is what is tested
    assert set(tracker.__all__) <= set(namespace)
    assert {"ExperimentTracker", "ValidationError", "Owner"} <= set(tracker.__all__)


def documented_imports() -> list[tuple[str, str]]:
    """(module, name) of every `from tracker... import ...` in the README and docs/."""
    found = []
    for path in DOCS:
        for module, names in re.findall(r"from (tracker[\w.]*) import ([\w, ]+)", path.read_text(encoding="utf-8")):
            found += [(module, name.strip()) for name in names.split(",") if name.strip()]
    return sorted(set(found))


def documented_dotted() -> list[str]:
    """Names the docs give as module.name (or module:name) in the documented modules."""
    pattern = r"\b(tracker\.(?:ttpt|integrations\.optuna|ui)[.:][A-Za-z_]\w*)"
    return sorted({m for path in DOCS for m in re.findall(pattern, path.read_text(encoding="utf-8"))})


def test_the_docs_import_names_from_the_documented_modules() -> None:
    modules = {module for module, _ in documented_imports()}
    assert {"tracker", "tracker.ttpt", "tracker.integrations.optuna"} <= modules
    assert "tracker.ui:create_app" in documented_dotted()


@pytest.mark.parametrize(("module", "name"), documented_imports())
def test_each_name_the_docs_import_is_importable(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"the docs import {name} from {module}"


@pytest.mark.parametrize("dotted", documented_dotted())
def test_each_name_the_docs_give_in_a_documented_module_exists(dotted: str) -> None:
    module, _, name = dotted.replace(":", ".").rpartition(".")
    try:
        importlib.import_module(f"{module}.{name}")  # a submodule
    except ModuleNotFoundError:
        assert hasattr(importlib.import_module(module), name), f"the docs name {dotted}"
