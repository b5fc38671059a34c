"""The browser of a SQL store: pages on the indexes, digests fed from primary-key ranges.

Trial pages sorted by value walk the `(experiment_id, value)` index from the best end, those
sorted by trial number the `(experiment_id, trial_number)` unique index; both stop after the page
(LIMIT, or a keyset condition from the cursor). Sorting by a metric or a param reads that value
out of every trial of the experiment: no index serves it.

New rows are found above the highest ids seen. On PostgreSQL a transaction can commit a lower id
after a higher one is visible; the ids skipped over are remembered as gaps for `GAP_SECONDS` and
looked up again on each call, so a late commit is still counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Double, Select, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from tracker.errors import NotFoundError
from tracker.read.browser import Browser, ExperimentPageQuery, TrialPageQuery, decode_cursor
from tracker.read.digest import CheckFeed, TrialFeed
from tracker.read.downloads import Download
from tracker.sql.models import MYSQL_DIALECTS, experiment_tags, experiments, trials, ttpt_results
from tracker.sql.queries import latest_ttpt_id
from tracker.sql.rows import EXPERIMENT_COLUMNS, TRIAL_COLUMNS, TTPT_COLUMNS, RecordReader
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.records import Artifact, Experiment, Owner, StepMetric, Trial, TTPTResult

T = TypeVar("T")
GAP_SECONDS = 120.0
RECENT = 1_000
"""On the first read, missing ids among the last RECENT below the top are watched as gaps."""
MAX_GAPS = 10_000
CHUNK = 50_000
_FEED_TRIAL = (trials.c.id, trials.c.experiment_id, trials.c.trial_number, trials.c.state, trials.c.value)


class SqlBrowser(Browser[Connection]):
    def __init__(self, uow: UnitOfWork, records: RecordReader) -> None:
        super().__init__()
        self.uow = uow
        self.records = records
        self.dialect = uow.dialect
        self._trial_gaps: dict[int, float] = {}
        self._check_gaps: dict[int, float] = {}

    def _run(self, work: Callable[[Connection], T]) -> T:
        return self.uow.read(work)

    def _artifacts(self, conn: Connection, owner: Owner) -> list[Artifact]:
        from tracker.sql.attachments import list_artifacts

        return list_artifacts(conn, owner, False)

    def _step_metrics(self, conn: Connection, trial_id: int) -> list[StepMetric]:
        from tracker.sql.attachments import list_step_metrics

        return list_step_metrics(conn, trial_id, None)

    def download(self, owner: Owner, name: str) -> Download:
        from tracker.sql.downloads import download

        return download(self.uow, owner, name)

    # digests ---------------------------------------------------------------------------------

    def _sync(self, conn: Connection) -> None:
        digests = self._digests
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
            self._json_leaf(ttpt_results.c.metrics, ("boundaries",))[0],
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

    # experiments -----------------------------------------------------------------------------

    def _experiment_ids(self, conn: Connection, query: ExperimentPageQuery, sort: str, descending: bool) -> list[int]:
        column = experiments.c[sort]
        stmt = select(experiments.c.id).order_by(column.desc() if descending else column.asc(), experiments.c.id)
        if query.ids is not None:
            stmt = stmt.where(experiments.c.id.in_(list(query.ids)))
        if query.text:
            finder = func.strpos if self.dialect == "postgresql" else func.instr
            needle = literal(query.text.lower(), String())
            stmt = stmt.where(
                or_(
                    finder(func.lower(experiments.c.name), needle) > 0,
                    finder(func.lower(experiments.c.template), needle) > 0,
                )
            )
        if query.created_after is not None:
            stmt = stmt.where(experiments.c.created_at >= query.created_after)
        if query.created_before is not None:
            stmt = stmt.where(experiments.c.created_at < query.created_before)
        if query.tag is not None:
            name, value = query.tag
            tagged = select(experiment_tags.c.experiment_id).where(
                experiment_tags.c.experiment_id == experiments.c.id, experiment_tags.c.key == name
            )
            if value is not None:
                tagged = tagged.where(experiment_tags.c.value == value)
            stmt = stmt.where(tagged.exists())
        return [int(i) for i in conn.execute(stmt).scalars()]

    def _experiments(self, conn: Connection, ids: Sequence[int]) -> dict[int, Experiment]:
        found: dict[int, Experiment] = {}
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), 1_000):
            stmt = select(*EXPERIMENT_COLUMNS).where(experiments.c.id.in_(wanted[start : start + 1_000]))
            for experiment in self.records.experiments(conn, conn.execute(stmt).all()):
                found[experiment.id] = experiment
        for experiment_id in ids:
            if experiment_id not in found:
                raise NotFoundError(f"experiment {experiment_id} does not exist")
        return found

    # trials ----------------------------------------------------------------------------------

    def _trial_page(
        self, conn: Connection, experiment: Experiment, query: TrialPageQuery
    ) -> tuple[list[Trial], tuple[float | None, int] | None]:
        stmt = select(*TRIAL_COLUMNS).where(trials.c.experiment_id == experiment.id)
        if query.states is not None:
            stmt = stmt.where(trials.c.state.in_(query.states))
        if query.ttpt is not None:
            stmt = stmt.where(_ttpt_condition(query.ttpt))
        descending = query.is_descending(experiment.direction)
        cursor = decode_cursor(query.after) if query.after else None
        offset = 0 if cursor else query.offset
        metric = query.metric
        if metric is not None:
            number, text = self._metric(*metric)
            stmt = stmt.order_by(
                *self._nulls_last(number, descending), *self._nulls_last(text, descending), trials.c.trial_number
            )
            return self._trials(conn, stmt.offset(offset).limit(query.limit)), None
        if query.sort == "trial_number":
            order = trials.c.trial_number.desc() if descending else trials.c.trial_number.asc()
            if cursor:
                after = cursor[2]
                stmt = stmt.where(trials.c.trial_number < after if descending else trials.c.trial_number > after)
            page = self._trials(conn, stmt.order_by(order).offset(offset).limit(query.limit))
            return page, (None if not page else (None, page[-1].trial_number))
        return self._by_value(conn, stmt, query, descending, cursor, offset)

    def _by_value(
        self,
        conn: Connection,
        stmt: Select[Any],
        query: TrialPageQuery,
        descending: bool,
        cursor: tuple[int, float | None, int] | None,
        offset: int,
    ) -> tuple[list[Trial], tuple[float | None, int] | None]:
        """Valued trials on the index (plain ASC/DESC: PostgreSQL's default null placement, so a
        backward scan serves DESC), then the trials without a value by trial number."""
        value, number = trials.c.value, trials.c.trial_number
        page: list[Trial] = []
        in_nulls = cursor is not None and cursor[1] is None
        if not in_nulls:
            valued = stmt.where(value.is_not(None))
            if cursor is not None:
                v, n = cursor[1], cursor[2]
                beyond = value < v if descending else value > v
                valued = valued.where(
                    value <= v if descending else value >= v, or_(beyond, and_(value == v, number > n))
                )
            ordered = valued.order_by(value.desc() if descending else value.asc(), number)
            page = self._trials(conn, ordered.offset(offset).limit(query.limit))
            if len(page) == query.limit:
                return page, (page[-1].value, page[-1].trial_number)
            if page or cursor is not None:
                offset = 0
            else:  # the offset lies past the valued trials: count them to place it among the rest
                counted = select(func.count()).select_from(valued.with_only_columns(trials.c.id).subquery())
                offset -= int(conn.execute(counted).scalar() or 0)
        nulls = stmt.where(value.is_(None))
        if in_nulls and cursor is not None:
            nulls = nulls.where(number > cursor[2])
        rest = self._trials(conn, nulls.order_by(number).offset(max(offset, 0)).limit(query.limit - len(page)))
        page += rest
        if not page:
            return page, None
        return page, (page[-1].value, page[-1].trial_number)

    def _nulls_last(self, key: ColumnElement[Any], descending: bool) -> list[Any]:
        """ORDER BY terms of `key`, NULLs last (MariaDB and MySQL have no NULLS LAST)."""
        ordered = key.desc() if descending else key.asc()
        if self.dialect in MYSQL_DIALECTS:
            return [key.is_(None), ordered]
        return [ordered.nulls_last()]

    def _metric(self, field: str, path: tuple[str, ...]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """(number, text) sort keys of a JSON leaf: numbers sort numerically, strings as text."""
        return self._json_leaf(trials.c[field], path)

    def _json_leaf(self, column: Any, path: tuple[str, ...]) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """(number, text) of the leaf at `path` in a JSON column: NULL when it is not that kind."""
        if self.dialect in MYSQL_DIALECTS:
            steps = "".join('."' + part.replace("\\", "\\\\").replace('"', '\\"') + '"' for part in path)
            leaf = func.json_extract(column, literal("$" + steps, String()))
            kind = func.json_type(leaf)
            return (
                case((kind.in_(("INTEGER", "DOUBLE", "UNSIGNED INTEGER")), cast(leaf, Double()))),
                case((kind == "STRING", func.json_unquote(leaf))),
            )
        if self.dialect == "sqlite":
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

    def _trials(self, conn: Connection, stmt: Select[Any]) -> list[Trial]:
        return self.records.trials(conn, conn.execute(stmt).all())

    def _trial_detail(self, conn: Connection, trial_id: int) -> tuple[Trial, Experiment, list[TTPTResult]]:
        row = conn.execute(select(*TRIAL_COLUMNS).where(trials.c.id == trial_id)).first()
        if row is None:
            raise NotFoundError(f"trial {trial_id} does not exist")
        trial = self.records.trials(conn, [row])[0]
        experiment = self._experiments(conn, [trial.experiment_id])[trial.experiment_id]
        stmt = select(*TTPT_COLUMNS).where(ttpt_results.c.trial_id == trial_id).order_by(ttpt_results.c.id)
        return trial, experiment, [TTPTResult(**r._mapping) for r in conn.execute(stmt)]

    def _ties_before(self, conn: Connection, trial: Trial) -> int:
        """An equality lookup on the (experiment_id, value) index."""
        return self._count(
            conn,
            and_(
                trials.c.experiment_id == trial.experiment_id,
                trials.c.value == trial.value,
                trials.c.state == "complete",
                # "+ 0": SQLite would otherwise walk the trial-number index up to this trial
                trials.c.trial_number + 0 < trial.trial_number,
            ),
        )

    @staticmethod
    def _count(conn: Connection, condition: ColumnElement[bool]) -> int:
        return int(conn.execute(select(func.count()).select_from(trials).where(condition)).scalar() or 0)

    def _best_trials(self, conn: Connection, experiment_id: int, n: int) -> list[Trial]:
        direction = conn.execute(select(experiments.c.direction).where(experiments.c.id == experiment_id)).scalar()
        order = trials.c.value.desc() if direction == "maximize" else trials.c.value.asc()
        stmt = (
            select(*TRIAL_COLUMNS)
            .where(trials.c.experiment_id == experiment_id, trials.c.value.is_not(None), trials.c.state == "complete")
            .order_by(order, trials.c.trial_number)
            .limit(n)
        )
        return self._trials(conn, stmt)

    def _trials_by_number(self, conn: Connection, experiment_id: int, numbers: Sequence[int]) -> list[Trial]:
        found: list[Trial] = []
        wanted = list(numbers)
        for start in range(0, len(wanted), 1_000):
            stmt = select(*TRIAL_COLUMNS).where(
                trials.c.experiment_id == experiment_id,
                trials.c.trial_number.in_(wanted[start : start + 1_000]),
                trials.c.state == "complete",
                trials.c.value.is_not(None),
            )
            found += self._trials(conn, stmt)
        return sorted(found, key=lambda t: t.trial_number)


def _ttpt_condition(outcome: str) -> ColumnElement[bool]:
    if outcome == "unchecked":
        return ~select(ttpt_results.c.id).where(ttpt_results.c.trial_id == trials.c.id).exists()
    passed = select(ttpt_results.c.passed).where(ttpt_results.c.id == latest_ttpt_id()).scalar_subquery()
    return passed.is_(outcome == "passed")


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
