"""How a SQL browser keeps its digests up to date: new rows are found above the highest ids seen.

On PostgreSQL a transaction can commit a lower id after a higher one is visible; the ids skipped
over are remembered as gaps for `GAP_SECONDS` and looked up again on each call, so a late commit
is still counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Double, Select, String, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

from tracker.read.digest import CheckFeed, Digests, TrialFeed
from tracker.sql.models import MYSQL_DIALECTS, experiments, trials, ttpt_results

GAP_SECONDS = 120.0
RECENT = 1_000
"""On the first read, missing ids among the last RECENT below the top are watched as gaps."""
MAX_GAPS = 10_000
CHUNK = 50_000
_FEED_TRIAL = (trials.c.id, trials.c.experiment_id, trials.c.trial_number, trials.c.state, trials.c.value)


class DigestFeed:
    """The rows a browser's digests have not seen yet, and the gaps they may still fill."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._trial_gaps: dict[int, float] = {}
        self._check_gaps: dict[int, float] = {}

    def sync(self, conn: Connection, digests: Digests) -> None:
        """Bring `digests` up to date from the rows added (or committed late) since the last call."""
        directions = {int(i): d for i, d in conn.execute(select(experiments.c.id, experiments.c.direction))}
        digests.keep(directions)
        trial_top = conn.execute(select(func.max(trials.c.id))).scalar() or 0
        check_top = conn.execute(select(func.max(ttpt_results.c.id))).scalar() or 0
        if not digests.ready:  # the first call reads everything once, streamed
            recent_trials: set[int] = set()
            recent_checks: set[int] = set()
            digests.feed(
                _noting(self._stream_trials(conn, trial_top), trial_top - RECENT, recent_trials),
                _noting(self._stream_checks(conn, check_top), check_top - RECENT, recent_checks),
            )
            # Ids just below the top that are not there yet may belong to open transactions.
            self._note_gaps(self._trial_gaps, max(0, trial_top - RECENT), trial_top, recent_trials)
            self._note_gaps(self._check_gaps, max(0, check_top - RECENT), check_top, recent_checks)
            digests.trial_mark, digests.check_mark, digests.ready = trial_top, check_top, True
            return
        if (
            trial_top == digests.trial_mark
            and check_top == digests.check_mark
            and not (self._trial_gaps or self._check_gaps)
        ):
            return
        new_trials = self._new_trials(conn, digests.trial_mark, trial_top)
        new_checks = self._new_checks(conn, digests.check_mark, check_top)
        self._note_gaps(self._trial_gaps, digests.trial_mark, trial_top, {t.id for t in new_trials})
        self._note_gaps(self._check_gaps, digests.check_mark, check_top, {c.id for c in new_checks})
        digests.feed(new_trials, new_checks)
        digests.trial_mark, digests.check_mark = max(digests.trial_mark, trial_top), max(digests.check_mark, check_top)

    def _stream_trials(self, conn: Connection, top: int) -> Iterator[TrialFeed]:
        stmt = select(*_FEED_TRIAL).where(trials.c.id <= top).order_by(trials.c.id)
        for rows in self._by_id(conn, stmt, trials.c.id):
            yield from (TrialFeed(*row) for row in rows)

    def _stream_checks(self, conn: Connection, top: int) -> Iterator[CheckFeed]:
        stmt = self._checks_base().where(ttpt_results.c.id <= top).order_by(ttpt_results.c.id)
        for rows in self._by_id(conn, stmt, ttpt_results.c.id):
            yield from (_check_feed(row) for row in rows)

    def _by_id(self, conn: Connection, stmt: Select[Any], column: Any) -> Iterator[Sequence[Any]]:
        """The rows of `stmt` (ordered by `column`, an id selected first) in chunks. The two streams
        are read in turns; PyMySQL cannot hold two open results, so on MariaDB and MySQL each chunk
        is its own query, from the last id on."""
        if self.dialect not in MYSQL_DIALECTS:
            yield from conn.execution_options(yield_per=CHUNK).execute(stmt).partitions()
            return
        last = 0
        while rows := conn.execute(stmt.where(column > last).limit(CHUNK)).all():
            yield rows
            last = rows[-1][0]

    def _checks_base(self) -> Select[Any]:
        columns = (
            ttpt_results.c.id,
            ttpt_results.c.trial_id,
            trials.c.experiment_id,
            trials.c.trial_number,
            trials.c.state,
            trials.c.value,
            ttpt_results.c.passed,
            ttpt_results.c.num_violations,
            json_leaf(self.dialect, ttpt_results.c.metrics, ("boundaries",))[0],
        )
        return select(*columns).join(trials, trials.c.id == ttpt_results.c.trial_id)

    def _new_trials(self, conn: Connection, mark: int, top: int) -> list[TrialFeed]:
        found = []
        if top > mark:
            stmt = select(*_FEED_TRIAL).where(trials.c.id > mark, trials.c.id <= top).order_by(trials.c.id)
            found = [TrialFeed(*row) for row in conn.execute(stmt)]
        late = self._late(conn, self._trial_gaps, select(*_FEED_TRIAL), trials.c.id)
        return [TrialFeed(*row) for row in late] + found

    def _new_checks(self, conn: Connection, mark: int, top: int) -> list[CheckFeed]:
        base = self._checks_base()
        found = []
        if top > mark:
            stmt = base.where(ttpt_results.c.id > mark, ttpt_results.c.id <= top).order_by(ttpt_results.c.id)
            found = [_check_feed(row) for row in conn.execute(stmt)]
        late = self._late(conn, self._check_gaps, base, ttpt_results.c.id)
        return [_check_feed(row) for row in late] + found

    def _late(self, conn: Connection, gaps: dict[int, float], base: Select[Any], column: Any) -> list[Any]:
        """Rows committed since, with ids among the gaps; expired gaps are forgotten."""
        if not gaps:
            return []
        now = time.monotonic()
        for gap in [g for g, seen in gaps.items() if now - seen > GAP_SECONDS]:
            del gaps[gap]
        rows: list[Any] = []
        ids = sorted(gaps)
        for start in range(0, len(ids), 1_000):
            rows += conn.execute(base.where(column.in_(ids[start : start + 1_000])).order_by(column)).all()
        for row in rows:
            gaps.pop(row[0], None)
        return rows

    @staticmethod
    def _note_gaps(gaps: dict[int, float], mark: int, top: int, seen: set[int]) -> None:
        if top - mark > MAX_GAPS * 10:
            return  # a bulk load: ids of rolled-back batches are not worth watching
        now = time.monotonic()
        for missing in range(mark + 1, top + 1):
            if missing not in seen:
                gaps[missing] = now
        while len(gaps) > MAX_GAPS:
            del gaps[next(iter(gaps))]


def json_leaf(dialect: str, column: Any, path: tuple[str, ...]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """(number, text) of the leaf at `path` in a JSON column: NULL when it is not that kind."""
    if dialect in MYSQL_DIALECTS:
        steps = "".join('."' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in path)
        leaf = func.json_extract(column, literal("$" + steps, String()))
        kind = func.json_type(leaf)
        return (
            case((kind.in_(("INTEGER", "DOUBLE", "UNSIGNED INTEGER")), cast(leaf, Double()))),
            case((kind == "STRING", func.json_unquote(leaf))),
        )
    if dialect == "sqlite":
        where = "$" + "".join(f'."{part}"' for part in path)
        kind = func.json_type(column, where)
        leaf = func.json_extract(column, where)
        return (
            case((kind.in_(("integer", "real")), leaf)),
            case((kind == "text", leaf)),
        )
    target = column.op("#>")(cast(literal(list(path), ARRAY(String())), ARRAY(String())))
    kind = func.jsonb_typeof(target)
    as_text = target.op("#>>")(cast(literal([], ARRAY(String())), ARRAY(String())))
    return case((kind == "number", cast(as_text, Double()))), case((kind == "string", as_text))


def _check_feed(row: Any) -> CheckFeed:
    boundaries = None if row[8] is None else float(row[8])
    count = int(boundaries) if boundaries is not None and boundaries.is_integer() else None
    return CheckFeed(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), int(row[7]), count)


def _noting(rows: Iterator[Any], above: int, seen: set[int]) -> Iterator[Any]:
    """`rows` unchanged, adding the ids above `above` to `seen`."""
    for row in rows:
        if row.id > above:
            seen.add(row.id)
        yield row
