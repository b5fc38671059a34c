"""The browser of a SQL store: pages on the indexes, digests fed from primary-key ranges.

Trial pages sorted by value walk the `(experiment_id, value)` index from the best end, those
sorted by trial number the `(experiment_id, trial_number)` unique index; both stop after the page
(LIMIT, or a keyset condition from the cursor). Sorting by a performance metric walks the
`trial_performance` index (`tracker.sql.browse_metric`); sorting by a param, or past the trials
that have a number for the metric, reads that value out of every trial's JSON.

The digests are kept up to date by `tracker.sql.browse_feed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, String, and_, case, func, literal, or_, select

from tracker.errors import NotFoundError
from tracker.read.browser import Browser, ExperimentPageQuery, TrialPageQuery, decode_cursor
from tracker.read.downloads import Download
from tracker.read.pareto_cache import ObjectiveRow
from tracker.sql import browse_metric
from tracker.sql.browse_feed import DigestFeed, json_leaf
from tracker.sql.models import MYSQL_DIALECTS, experiment_tags, experiments, trials, ttpt_results
from tracker.sql.queries import latest_ttpt_id
from tracker.sql.rows import EXPERIMENT_COLUMNS, TRIAL_COLUMNS, TTPT_COLUMNS, RecordReader
from tracker.sql.unit_of_work import UnitOfWork
from tracker.store.objectives import Objectives
from tracker.store.records import Artifact, Experiment, Owner, StepMetric, Trial, TTPTResult

T = TypeVar("T")


class SqlBrowser(Browser[Connection]):
    def __init__(self, uow: UnitOfWork, records: RecordReader) -> None:
        super().__init__()
        self.uow = uow
        self.records = records
        self.dialect = uow.dialect
        self._feed = DigestFeed(uow.dialect)

    def _run(self, work: Callable[[Connection], T]) -> T:
        return self.uow.read(work)

    def _objective_rows(
        self, conn: Connection, experiment: Experiment, objectives: Objectives, after: int
    ) -> list[ObjectiveRow]:
        from tracker.sql.browse_pareto import objective_rows

        return objective_rows(conn, experiment.id, objectives, after)

    def _artifacts(self, conn: Connection, owner: Owner) -> list[Artifact]:
        from tracker.sql.attachments import list_artifacts

        return list_artifacts(conn, owner, False)

    def _step_metrics(self, conn: Connection, trial_id: int) -> list[StepMetric]:
        from tracker.sql.attachments import list_step_metrics

        return list_step_metrics(conn, trial_id, None)

    def download(self, owner: Owner, name: str) -> Download:
        from tracker.sql.downloads import download

        return download(self.uow, owner, name)

    def _sync(self, conn: Connection) -> None:
        self._feed.sync(conn, self._digests)

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
        filters: list[ColumnElement[bool]] = [] if query.states is None else [trials.c.state.in_(query.states)]
        filters += [] if query.ttpt is None else [_ttpt_condition(query.ttpt)]
        stmt = select(*TRIAL_COLUMNS).where(trials.c.experiment_id == experiment.id, *filters)
        descending = query.is_descending(experiment.direction)
        cursor = decode_cursor(query.after) if query.after else None
        offset = 0 if cursor else query.offset
        metric = query.metric
        if metric is not None and metric[0] == "performance":
            window = (offset, query.limit)
            numbers = browse_metric.page_numbers(conn, experiment.id, metric[1], descending, window, filters)
            if numbers is not None:
                rows = browse_metric.trials_by_number(conn, experiment.id, numbers)
                return self.records.trials(conn, rows), None
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
        return json_leaf(self.dialect, trials.c[field], path)

    def _trials(self, conn: Connection, stmt: Select[Any]) -> list[Trial]:
        return self.records.trials(conn, conn.execute(stmt).all())

    def _trial_detail(self, conn: Connection, trial_id: int) -> tuple[Trial, Experiment, list[TTPTResult]]:
        row = conn.execute(select(*TRIAL_COLUMNS).where(trials.c.id == trial_id)).first()
        if row is None:
            raise NotFoundError(f"trial {trial_id} does not exist")
        trial = self.records.trials(conn, [row])[0]
        experiment = self._experiments(conn, [trial.experiment_id])[trial.experiment_id]
        stmt = select(*TTPT_COLUMNS).where(ttpt_results.c.trial_id == trial_id).order_by(ttpt_results.c.id)
        return trial, experiment, self.records.ttpt_results(conn.execute(stmt))

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

    def _early_counts(self, conn: Connection, experiment_id: int, checks: bool = True) -> tuple[int, int, int]:
        """The trials on the experiment's index; its checks from the smaller side: through its
        trials when it has fewer than the store has checks, else through the checks (SQLite
        would otherwise walk a million trials for a hundred thousand checks)."""
        n_trials = self._count(conn, trials.c.experiment_id == experiment_id)
        if not checks:
            return n_trials, 0, 0
        failed = func.coalesce(func.sum(case((ttpt_results.c.passed, 0), else_=1)), 0)
        stmt = select(func.count(ttpt_results.c.id), failed)
        if n_trials > (conn.execute(select(func.max(ttpt_results.c.id))).scalar() or 0):
            owner = select(trials.c.experiment_id).where(trials.c.id == ttpt_results.c.trial_id).scalar_subquery()
            stmt = stmt.where(owner == experiment_id)
        else:
            stmt = stmt.join_from(ttpt_results, trials, trials.c.id == ttpt_results.c.trial_id).where(
                trials.c.experiment_id == experiment_id
            )
        n_checks, n_failed = conn.execute(stmt).one()
        return n_trials, int(n_checks), int(n_failed)

    def _latest_outcomes(self, conn: Connection, trial_ids: Sequence[int]) -> dict[int, bool]:
        found: dict[int, tuple[int, bool]] = {}
        wanted = sorted(set(trial_ids))
        for start in range(0, len(wanted), 1_000):
            stmt = select(ttpt_results.c.trial_id, ttpt_results.c.id, ttpt_results.c.passed).where(
                ttpt_results.c.trial_id.in_(wanted[start : start + 1_000])
            )
            for trial_id, check_id, passed in conn.execute(stmt):
                if trial_id not in found or check_id > found[trial_id][0]:  # the latest counts
                    found[trial_id] = (check_id, bool(passed))
        return {trial_id: passed for trial_id, (_, passed) in found.items()}

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
