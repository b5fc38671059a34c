"""Trials pages sorted by a top-level performance metric, on the `trial_performance` index
(`tracker.sql.performance`): the first `offset + limit` numbers of the metric in the asked
order, the whole group tied with the last of them, and the page cut from those by (value, trial
number). The index answers when at least `offset + limit` trials (after the filters) have a number
there; otherwise None, and the caller sorts the trials' JSON as before, where strings and missing
values follow the numbers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select

from tracker.sql.models import trial_performance, trials
from tracker.sql.performance import MAX_KEY
from tracker.sql.rows import TRIAL_COLUMNS


def page_numbers(
    conn: Connection,
    experiment_id: int,
    path: tuple[str, ...],
    descending: bool,
    window: tuple[int, int],
    filters: list[ColumnElement[bool]],
) -> list[int] | None:
    """The trial numbers of the page (offset, limit) sorted by the metric at `path`, or None when
    the index cannot answer it alone."""
    if len(path) != 1 or len(path[0]) > MAX_KEY:
        return None  # nested metrics and very long names are not in the table
    tp = trial_performance
    stmt = select(tp.c.value, tp.c.trial_number).where(tp.c.experiment_id == experiment_id, tp.c.key == path[0])
    if filters:
        on = and_(trials.c.experiment_id == tp.c.experiment_id, trials.c.trial_number == tp.c.trial_number)
        stmt = stmt.join(trials, on).where(*filters)
    offset, limit = window
    wanted = offset + limit
    if wanted >= 2**63:
        return None  # past any experiment's trials; the JSON sort answers the empty page
    found = conn.execute(stmt.order_by(tp.c.value.desc() if descending else tp.c.value.asc()).limit(wanted)).all()
    if len(found) < wanted:
        return None
    edge = found[-1][0]
    chosen = [(v, n) for v, n in found if v != edge] + [(v, n) for v, n in conn.execute(stmt.where(tp.c.value == edge))]
    chosen.sort(key=lambda item: (-item[0] if descending else item[0], item[1]))
    return [n for _, n in chosen[offset:wanted]]


def trials_by_number(conn: Connection, experiment_id: int, numbers: list[int]) -> list[Any]:
    """The rows of the experiment's trials with these numbers, in that order."""
    stmt = select(*TRIAL_COLUMNS).where(trials.c.experiment_id == experiment_id, trials.c.trial_number.in_(numbers))
    rows = {row.trial_number: row for row in conn.execute(stmt)}
    return [rows[n] for n in numbers if n in rows]
