"""The `trial_performance` table's rows: the numbers among each trial's top-level performance
metrics, by metric, so that a trials page sorted by a metric walks an index instead of reading
every trial's JSON. A metric counts when it is a JSON number in the stored form
(`tracker.store.codec`): exactly the values that the JSON sort orders as numbers (tagged floats
such as NaN or 1e20 are objects there, and sort after). Nested metrics (`risk.var`) are not
stored: their sort reads the JSON.

The key is the metric's name. On SQLite the rows are made by SQLite itself from the trials just
inserted (`json_each`), one statement per batch, sorted so that they fill neighbouring pages of
the B-tree; elsewhere here, in Python. The table has no foreign key (checking one per row cost a
fifth of its write time on SQLite): `delete_experiment` deletes the experiment's rows itself.
Migration 0005 fills the table for existing trials the same way (frozen there)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Insert, TextClause, insert, text

from tracker.sql.models import trial_performance

MAX_KEY = 250
"""The `key` column's length: longer names are not stored (their sort reads the JSON)."""
ADD: Insert = insert(trial_performance)
SQLITE_FILL: TextClause = text(
    "INSERT INTO trial_performance (experiment_id, key, value, trial_number) "
    "SELECT t.experiment_id, j.key, j.value, t.trial_number "
    "FROM trials AS t, json_each(t.performance) AS j "
    "WHERE t.id BETWEEN :first AND :last AND j.type IN ('integer', 'real') AND length(j.key) <= 250 "
    "ORDER BY 2, 3, 4"
)
"""The rows of the trials with ids first..last, made by SQLite in index order."""


def leaves(stored: Any) -> Iterator[tuple[str, float]]:
    """(name, number) of every top-level JSON number of a stored performance."""
    if type(stored) is not dict:
        return
    for name, value in stored.items():
        if type(value) in (int, float) and math.isfinite(value) and len(name) <= MAX_KEY:
            yield str(name), float(value)


def rows(experiment_id: int, trial_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table's rows for trials about to be added to the experiment, from their stored rows
    (`tracker.store.codec.trial_rows`), in index order: a batch then fills neighbouring pages of
    the B-tree instead of scattering over it."""
    out = [
        {"experiment_id": experiment_id, "key": key, "value": number, "trial_number": row["trial_number"]}
        for row in trial_rows
        for key, number in leaves(row["performance"])
    ]
    if len(out) > 1:
        out.sort(key=itemgetter("key", "value", "trial_number"))
    return out
