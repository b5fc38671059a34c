"""Printing what commands answer: rich tables for people, strict JSON and CSV for other tools.

JSON and CSV carry the API's dicts, each field once under its API name. JSON is RFC 8259: NaN
and ±inf become null. In CSV, nested values are JSON text, NaN is an empty field and ±inf are
`inf`/`-inf`; timestamps keep the API's ISO 8601 form (with `T`). In a table every cell shows
NaN and ±inf as `nan`, `inf` and `-inf`, nested values (`{"sharpe": inf}`) too.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def strict(value: Any) -> Any:
    """`value` with every non-finite float (at any depth) replaced by None, for strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def json_text(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259) of `value`; raises ValueError if anything non-finite is left."""
    return json.dumps(strict(value), indent=indent, ensure_ascii=False, allow_nan=False, default=str)


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict | list | tuple):
        return json_text(value)
    return value


@dataclass(frozen=True)
class Column:
    """A table column: its header and how a row's cell reads."""

    header: str
    cell: Callable[[dict[str, Any]], str]


def field(key: str, header: str | None = None, show: Callable[[Any], str] | None = None) -> Column:
    """The column of `row[key]`, shown by `show` (default: `plain`)."""
    shown = show or plain
    return Column(header or key, lambda row: shown(row.get(key)))


def plain(value: Any) -> str:
    """A table cell: None is `-`, floats to 4 significant digits, NaN and ±inf as `nan`, `inf`,
    `-inf` (nested values too, in JSON text that is otherwise strict)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"  # nan, inf, -inf
    if isinstance(value, dict | list | tuple):
        return nested_text(value)
    return str(value)


_NON_FINITE = "\x00non-finite:"


def nested_text(value: Any) -> str:
    """JSON text of a nested value for a table cell, with NaN and ±inf written as in every other
    cell (`nan`, `inf`, `-inf`), not as JSON's null."""
    marked = json.dumps(_mark(value), ensure_ascii=False, default=str)
    return re.sub(r'"\\u0000non-finite:(nan|inf|-inf)"', r"\1", marked)


def _mark(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{_NON_FINITE}{value}"
    if isinstance(value, dict):
        return {str(k): _mark(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mark(v) for v in value]
    return value


def percent(value: Any) -> str:
    """A rate as the demo shows it: 0.25 -> 25%."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.0%}"


def moment(value: Any) -> str:
    """An ISO timestamp, to the second, for reading."""
    return "-" if value is None else str(value)[:19].replace("T", " ")


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[Column], fmt: str, title: str | None = None) -> None:
    """Print the API rows as JSON or CSV (every key), or as a table of `columns`."""
    if fmt == "json":
        out(json_text(list(rows), indent=2))
    elif fmt == "csv":
        write_csv(rows)
    else:
        table([[c.cell(row) for c in columns] for row in rows], [c.header for c in columns], title)


def emit_one(row: dict[str, Any], fmt: str, title: str, shown: dict[str, Callable[[Any], str]] | None = None) -> None:
    """Print one API dict: a JSON object, a one-row CSV, or a table of field and value."""
    if fmt == "json":
        out(json_text(row, indent=2))
    elif fmt == "csv":
        write_csv([row])
    else:
        how = shown or {}
        table([[key, how.get(key, plain)(value)] for key, value in row.items()], ["field", "value"], title)


def write_csv(rows: Sequence[dict[str, Any]]) -> None:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    writer = csv.DictWriter(sys.stdout, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})


def table(cells: Sequence[Sequence[str]], headers: Sequence[str], title: str | None = None) -> None:
    """A rich table. Every column is at least as wide as its header, so a header is never cut;
    long cells wrap within their column."""
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title)
    for header in headers:
        grid.add_column(header, overflow="fold", min_width=len(header))
    for row in cells:
        grid.add_row(*row)
    width = os.get_terminal_size().columns if sys.stdout.isatty() else 160
    needed = sum(len(h) + 3 for h in headers) + 1
    Console(width=max(100, width, needed), highlight=False).print(grid)
