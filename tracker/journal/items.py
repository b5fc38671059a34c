"""The journal's items, its row writer and reader: a record's stored fields as plain JSON (the
form its lines and replay state hold: times as ISO 8601 text, numbers and JSON values in the
codec's storage form) and back into records, decoded. Values are checked by
`tracker.store.checks` on the way in and decoded here, and only here, on the way out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tracker.store import checks
from tracker.store.codec import decode, encode_float, number, parse_time
from tracker.store.records import (
    TRIAL_FRAME_FIELDS,
    TTPT_FRAME_FIELDS,
    Artifact,
    NewTrial,
    Owner,
    StepMetric,
    TrialTable,
    TTPTResult,
    kind_of,
    stored_fields,
)

R = TypeVar("R")
_JSON_FIELDS = frozenset(f.name for f in (*TRIAL_FRAME_FIELDS, *stored_fields(TTPTResult)) if kind_of(f) == "json")


def to_item(record: Any, where: str = "") -> dict[str, Any]:
    """`checks.to_row` as plain JSON for the journal: times as ISO 8601 text, numbers encoded."""
    return _as_item(type(record), checks.to_row(record, where))


def trial_items(trials: Sequence[NewTrial]) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """`checks.trial_rows` as items."""
    return checks.trial_rows(trials, to_item)


def to_values(record_type: type, values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """`checks.to_values` as items."""
    return _as_item(record_type, checks.to_values(record_type, values, where))


def _as_item(record_type: type, row: dict[str, Any]) -> dict[str, Any]:
    for name, kind, _ in checks.plan(record_type):
        value = row.get(name)
        if value is not None:
            if kind == "time":
                row[name] = value.isoformat()
            elif kind in ("number", "metric"):
                row[name] = encode_float(value)
    return row


def from_item(record_type: type[R], item: Mapping[str, Any]) -> R:
    """The record stored as `item`, decoded (sharing no container with the item)."""
    values: dict[str, Any] = {}
    for name, kind, _ in checks.plan(record_type):
        value = item.get(name)
        if value is not None:
            if kind == "json":
                value = decode(value)
            elif kind == "time":
                value = parse_time(value)
            elif kind in ("number", "metric"):
                value = number(value)
        elif kind == "tags":
            value = {}
        values[name] = value
    return record_type(**values)


def table(rows: Sequence[tuple[dict[str, Any], dict[str, Any] | None]], codes: list[str | None] | None) -> TrialTable:
    """The `TrialTable` of (trial item, its latest TTPT item) pairs, JSON values decoded; with
    the trials' strategy `codes` when given."""
    columns: dict[str, list[Any]] = {}
    for f in TRIAL_FRAME_FIELDS:
        name = f.name
        values = [t.get(name) for t, _ in rows]
        columns[name] = [decode(v) for v in values] if name in _JSON_FIELDS else values
    for name in TTPT_FRAME_FIELDS:
        values = [None if r is None else r.get(name) for _, r in rows]
        columns[f"ttpt.{name}"] = [decode(v) for v in values] if name in _JSON_FIELDS else values
    if codes is not None:
        columns["strategy_code"] = codes
    return TrialTable(columns)


def step_metric(trial_id: int, key: str, step: int, stored: Any) -> StepMetric:
    """A step metric from its stored value (None stands for NaN)."""
    value = number(stored)
    return StepMetric(trial_id=trial_id, step=step, key=key, value=math.nan if value is None else value)


def artifact(owner: Owner, item: Mapping[str, Any]) -> Artifact:
    """An artifact from its stored item."""
    return Artifact(
        owner, item["name"], item["media_type"], item["size"], item["sha256"], parse_time(item["created_at"])
    )
