"""The package's layers, listed once, and the import graph checked against them.

A module may import modules of its own layer or of a lower one, never of a higher one, and the
graph of modules (function-local and TYPE_CHECKING imports included) has no cycle.
`python -m tracker._layers` prints each module's layer, the arrows between layers, and any
violation (exit status 1 if there is one).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

LAYERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("base", ("tracker.errors", "tracker._version"), "errors and the version: imported by everything"),
    ("store", ("tracker.store",), "records, the codec, the Repository interface, locations, blobs, retries"),
    ("ttpt", ("tracker.ttpt",), "the look-ahead check and the verdict rule"),
    ("read", ("tracker.read",), "the Browser interface, its pages and the per-experiment digests"),
    ("backends", ("tracker.sql", "tracker.journal"), "the SQL and JSON-journal stores"),
    ("open", ("tracker.stores",), "opening a store from a URL"),
    ("services", ("tracker.reports", "tracker.transfer"), "analysis, export, plots; copying and archival"),
    ("facade", ("tracker.facade",), "ExperimentTracker, its arguments and its in-house answers"),
    ("integrations", ("tracker.integrations",), "Optuna"),
    ("surfaces", ("tracker.demo", "tracker.ui", "tracker.cli"), "the demo, the dashboard, the command line"),
    ("package", ("tracker", "tracker._layers"), "the public names"),
)
"""Lowest first: (name, the module prefixes it holds, what it is for)."""

ROOT = Path(__file__).resolve().parent


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest prefix that holds `module`; raises KeyError if none."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes, _) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    if best is None:
        raise KeyError(f"{module} is in no layer: add its prefix to tracker._layers.LAYERS")
    return best[0]


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("tracker", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def graph() -> dict[str, set[str]]:
    """Each module's imports of other modules of the package (every import statement, anywhere)."""
    found = modules()
    return {m: set(_imported(m, p, set(found))) for m, p in found.items()}


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Upward imports and cycles, each as one line; empty when the graph keeps the rules."""
    problems = [
        f"upward: {a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
        for a, targets in sorted(edges.items())
        for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]
    problems += [f"cycle: {' -> '.join(c)}" for c in _cycles(edges)]
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def report(edges: dict[str, set[str]]) -> list[str]:
    """The layers, the arrows between them, each module's layer and the violations, as lines."""
    lines = [f"{name:<13} {', '.join(prefixes):<45} {purpose}" for name, prefixes, purpose in LAYERS]
    arrows = sorted({(layer_of(a), layer_of(b)) for a, ts in edges.items() for b in ts if layer_of(a) != layer_of(b)})
    lines += ["", *(f"{LAYERS[a][0]} -> {LAYERS[b][0]}" for a, b in arrows), ""]
    lines += [f"{module:<40} {LAYERS[layer_of(module)][0]}" for module in sorted(edges)]
    return [*lines, "", *(violations(edges) or ["no cycle, no upward import"])]


def main() -> int:
    edges = graph()
    sys.stdout.write("\n".join(report(edges)) + "\n")
    return 1 if violations(edges) else 0


if __name__ == "__main__":
    sys.exit(main())
