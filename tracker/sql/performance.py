"""The `trial_performance` table's rows: the numbers among each trial's stored performance, by
the path of their leaf (a JSON array of keys), so that a trials page sorted by a metric walks an
index instead of reading every trial's JSON. A leaf counts when it is a JSON number in the stored
form (`tracker.store.codec`): exactly the leaves that the JSON sort orders as numbers (tagged
floats such as NaN or 1e20 are objects there, and sort after). Migration 0005 fills the table for
existing trials with the same rule (frozen there)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Insert, insert

from tracker.sql.models import trial_performance

MAX_KEY = 250
"""The `key` column's length: longer paths are not stored (their sort reads the JSON)."""
ADD: Insert = insert(trial_performance)


def path_key(path: Sequence[str]) -> str:
    """The `key` of a leaf: its path as compact JSON (`["risk","var"]`)."""
    return json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))


def leaves(stored: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, float]]:
    """(key, number) of every JSON number leaf of a stored value's nested objects."""
    if type(stored) is dict:
        for name, item in stored.items():
            yield from leaves(item, (*path, str(name)))
    elif path and type(stored) in (int, float) and math.isfinite(stored):
        key = path_key(path)
        if len(key) <= MAX_KEY:
            yield key, float(stored)


def rows(experiment_id: int, trial_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows for trials about to be added to the experiment, from their stored rows
    (`tracker.store.codec.trial_rows`)."""
    return [
        {"experiment_id": experiment_id, "key": key, "value": number, "trial_number": row["trial_number"]}
        for row in trial_rows
        for key, number in leaves(row["performance"])
    ]
