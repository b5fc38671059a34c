"""The objective values of an experiment's trials for its Pareto view, on a SQL store.

The first objective is the `trials.value` column. The others come from the `trial_performance`
index (`tracker.sql.performance`: one row per trial and top-level number) when many trials are
read at once, one index range per objective; a trial that has no row there for an objective (a
value stored tagged, such as -0.0 or 1e20, or no number at all) is looked up in its performance
JSON, as are all the trials of a small read (the few added since the browser's last call).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from tracker.read.pareto_cache import ObjectiveRow
from tracker.sql.models import trial_performance, trials
from tracker.store import codec
from tracker.store.objectives import Objectives

BULK = 2_000
"""From this many complete trials on, the other objectives are read from the index."""
CHUNK = 1_000


def objective_rows(conn: Connection, experiment_id: int, objectives: Objectives, after: int) -> list[ObjectiveRow]:
    """As `tracker.read.browser.Browser._objective_rows`."""
    c = trials.c
    stmt = select(c.id, c.trial_number, c.state, c.value).where(c.experiment_id == experiment_id)
    if after:
        stmt = stmt.where(c.id > after)
    rows = conn.execute(stmt).all()
    wanted = {
        int(n): (int(i), float(v))
        for i, n, state, v in rows
        if state == "complete" and v is not None and math.isfinite(v)
    }
    others = [name for name, _ in objectives[1:]]
    found: dict[str, dict[int, float]] = {name: {} for name in others}
    if len(wanted) >= BULK:
        for name in others:
            found[name] = _indexed(conn, experiment_id, name, wanted)
    missing = [wanted[n][0] for n in wanted if any(n not in found[name] for name in others)]
    for _, number, performance in _performances(conn, missing):
        for name in others:
            value = codec.number(performance.get(name)) if type(performance) is dict else None
            if value is not None:
                found[name][number] = value
    out: list[ObjectiveRow] = []
    for trial_id, number, _, _ in rows:
        entry = wanted.get(int(number))
        values: tuple[float, ...] | None = None
        if entry is not None:
            rest = [found[name].get(int(number)) for name in others]
            if all(v is not None and math.isfinite(v) for v in rest):
                values = (entry[1], *(float(v) for v in rest if v is not None))
        out.append((int(trial_id), int(number), values))
    return out


def _indexed(conn: Connection, experiment_id: int, name: str, wanted: dict[int, Any]) -> dict[int, float]:
    """trial number -> the metric's number, from the index range of (experiment, name)."""
    tp = trial_performance.c
    stmt = select(tp.trial_number, tp.value).where(tp.experiment_id == experiment_id, tp.key == name)
    return {int(n): float(v) for n, v in conn.execute(stmt) if n in wanted}


def _performances(conn: Connection, ids: Sequence[int]) -> list[tuple[int, int, Any]]:
    """(id, trial number, performance in storage form) of these trials."""
    out = []
    for start in range(0, len(ids), CHUNK):
        stmt = select(trials.c.id, trials.c.trial_number, trials.c.performance).where(
            trials.c.id.in_(ids[start : start + CHUNK])
        )
        for trial_id, number, performance in conn.execute(stmt):
            stored = codec.loads(performance) if isinstance(performance, str | bytes) else performance
            out.append((int(trial_id), int(number), stored))
    return out
