"""The SQL repository (SQLite and PostgreSQL) on SQLAlchemy Core over the declarative tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Double,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import ScalarSelect

from tracker import schema
from tracker.errors import DuplicateTrialError, NotFoundError, TrackerError
from tracker.models import experiments, trials, ttpt_results
from tracker.records import (
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    JSONValue,
    NewExperiment,
    NewTrial,
    NewTTPTResult,
    Synchronous,
    Trial,
    TrialQuery,
    TrialState,
    TrialTable,
    TTPTResult,
)
from tracker.repository import Repository
from tracker.unit_of_work import Inserter, SqlDatabase
from tracker.urls import StoreLocation

_TRIAL_COLUMNS = (
    trials.c.id,
    trials.c.experiment_id,
    trials.c.trial_number,
    trials.c.params,
    trials.c.performance,
    trials.c.value,
    trials.c.state,
    trials.c.created_at,
    trials.c.strategy_code,
    trials.c.strategy_template,
    trials.c.generation_method,
    trials.c.started_at,
    trials.c.completed_at,
)
_STATES = ("complete", "pruned", "failed", "running")


def _experiment(row: Row[Any]) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        template=row.template,
        mode=row.mode,
        config=row.config,
        objective=row.objective,
        direction=row.direction,
        created_at=row.created_at,
        summary=row.summary,
    )


def _trial(row: Any) -> Trial:
    return Trial(**row._mapping)


def _ttpt(row: Row[Any]) -> TTPTResult:
    return TTPTResult(
        id=row.id,
        trial_id=row.trial_id,
        passed=bool(row.passed),
        num_violations=row.num_violations,
        metrics=row.metrics,
        violations=row.violations,
        created_at=row.created_at,
    )


class SqlRepository(Repository):
    """Repository on a SQLAlchemy URL; every method is one transaction of the unit of work."""

    def __init__(
        self, location: StoreLocation, *, synchronous: Synchronous = "normal", auto_upgrade: bool = False
    ) -> None:
        self.location = location
        self.db = SqlDatabase(location, synchronous=synchronous)
        self._listings: dict[tuple[bool, tuple[str, ...]], Select[Any]] = {}
        try:
            schema.prepare(self.db, auto_upgrade=auto_upgrade)
            self.db.use_wal()
        except TrackerError:
            self.db.dispose()
            raise

    # experiments ---------------------------------------------------------------------------

    def add_experiment(self, new: NewExperiment) -> int:
        values = {
            "name": new.name,
            "template": new.template,
            "mode": new.mode,
            "config": new.config,
            "objective": new.objective,
            "direction": new.direction,
            "created_at": new.created_at,
            "summary": new.summary,
        }
        return self.db.run(
            lambda conn: int(conn.execute(insert(experiments).returning(experiments.c.id), values).scalar_one()),
            write=True,
        )

    def get_experiment(self, experiment_id: int) -> Experiment:
        return self.db.run(lambda conn: self._experiment(conn, experiment_id), write=False)

    def _experiment(self, conn: Connection, experiment_id: int) -> Experiment:
        row = conn.execute(select(experiments).where(experiments.c.id == experiment_id)).first()
        if row is None:
            raise _missing("experiment", experiment_id)
        return _experiment(row)

    def list_experiments(self, query: ExperimentQuery) -> list[ExperimentStats]:
        return self.db.run(lambda conn: self._list_experiments(conn, query), write=False)

    def _list_experiments(self, conn: Connection, query: ExperimentQuery) -> list[ExperimentStats]:
        with_trials = query.trial_stats or query.min_best_value is not None
        filters = {
            "ids": None if query.ids is None else list(query.ids),
            "max_rate": query.max_violation_rate,
            "template": query.template,
            "mode": query.mode,
            "name_part": query.name_contains,
            "min_best": query.min_best_value,
            "after": query.created_after,
            "before": query.created_before,
        }
        given = {key: value for key, value in filters.items() if value is not None}
        shape = (with_trials, tuple(sorted(given)))
        stmt = self._listings.get(shape)
        if stmt is None:  # one statement per combination of filters, values bound at execution
            stmt = self._listings[shape] = _listing_statement(conn.dialect.name, with_trials, set(given))
        return [
            ExperimentStats(
                experiment=_experiment(row),
                n_trials=int(row.n_trials or 0) if with_trials else 0,
                n_by_state={state: int(getattr(row, f"n_{state}") or 0) for state in _STATES} if with_trials else {},
                best_value=row.best_value if with_trials else None,
                ttpt_total=int(row.ttpt_total_),
                ttpt_failed=int(row.ttpt_failed_),
            )
            for row in conn.execute(stmt, given)
        ]

    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        def work(conn: Connection) -> None:
            stmt = update(experiments).where(experiments.c.id == experiment_id).values(summary=summary)
            if conn.execute(stmt).rowcount == 0:
                raise _missing("experiment", experiment_id)

        self.db.run(work, write=True)

    def delete_experiment(self, experiment_id: int) -> None:
        def work(conn: Connection) -> None:
            stmt = delete(experiments).where(experiments.c.id == experiment_id)
            if conn.execute(stmt).rowcount == 0:
                raise _missing("experiment", experiment_id)

        self.db.run(work, write=True)

    # trials --------------------------------------------------------------------------------

    def add_trials(self, experiment_id: int, new_trials: Sequence[NewTrial]) -> list[int]:
        rows = [
            {
                "experiment_id": experiment_id,
                "trial_number": t.trial_number,
                "params": t.params,
                "performance": t.performance,
                "value": t.value,
                "state": t.state,
                "created_at": t.created_at,
                "strategy_code": t.strategy_code,
                "strategy_template": t.strategy_template,
                "generation_method": t.generation_method,
                "started_at": t.started_at,
                "completed_at": t.completed_at,
            }
            for t in new_trials
        ]

        def work(insert_rows: Inserter) -> list[int]:
            ids = insert_rows(trials, rows)
            checks = [
                _ttpt_row(trial_id, t.ttpt) for trial_id, t in zip(ids, new_trials, strict=True) if t.ttpt is not None
            ]
            if checks:
                insert_rows(ttpt_results, checks)
            return ids

        def conflict(exc: IntegrityError) -> TrackerError:
            if _is_unique_violation(exc):
                taken = self.trial_numbers(experiment_id)
                return DuplicateTrialError(
                    experiment_id, sorted(t.trial_number for t in new_trials if t.trial_number in taken)
                )
            return _missing("experiment", experiment_id)

        if not rows:
            self.get_experiment(experiment_id)
            return []
        if len(rows) == 1 and new_trials[0].ttpt is None:
            return [self.db.insert_one(trials, rows[0], on_integrity=conflict)]
        return self.db.run_inserts(work, on_integrity=conflict)

    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        def work(conn: Connection) -> None:
            stmt = (
                update(trials)
                .where(trials.c.id == trial_id)
                .values(strategy_code=code, strategy_template=template, generation_method=generation_method)
            )
            if conn.execute(stmt).rowcount == 0:
                raise _missing("trial", trial_id)

        self.db.run(work, write=True)

    def get_trial(self, trial_id: int) -> Trial:
        def work(conn: Connection) -> Trial:
            row = conn.execute(select(*_TRIAL_COLUMNS).where(trials.c.id == trial_id)).first()
            if row is None:
                raise _missing("trial", trial_id)
            return _trial(row)

        return self.db.run(work, write=False)

    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        def work(conn: Connection) -> list[Trial]:
            experiment = self._experiment(conn, experiment_id)
            stmt = select(*_TRIAL_COLUMNS).where(trials.c.experiment_id == experiment_id)
            if query.states is not None:
                stmt = stmt.where(trials.c.state.in_(query.states))
            if query.ttpt_passed is not None:
                passed = (
                    select(ttpt_results.c.passed)
                    .where(ttpt_results.c.id == _latest_ttpt_id())
                    .correlate(trials)
                    .scalar_subquery()
                )
                stmt = stmt.where(passed.is_(query.ttpt_passed))
            if query.order_by == "value":
                ordered = trials.c.value.desc() if experiment.direction == "maximize" else trials.c.value.asc()
                stmt = stmt.order_by(trials.c.value.is_(None), ordered, trials.c.trial_number)
            else:
                stmt = stmt.order_by(trials.c.trial_number)
            if query.limit is not None:
                stmt = stmt.limit(query.limit)
            return [_trial(row) for row in conn.execute(stmt)]

        return self.db.run(work, write=False)

    def trial_numbers(self, experiment_id: int) -> set[int]:
        def work(conn: Connection) -> set[int]:
            self._experiment(conn, experiment_id)
            stmt = select(trials.c.trial_number).where(trials.c.experiment_id == experiment_id)
            return {int(n) for n in conn.execute(stmt).scalars()}

        return self.db.run(work, write=False)

    def best_trial(self, experiment_id: int) -> Trial | None:
        def work(conn: Connection) -> Trial | None:
            experiment = self._experiment(conn, experiment_id)
            # Walk the (experiment_id, value) index from the best end to the first complete trial,
            # then take the lowest trial number among the trials with that value.
            order = trials.c.value.desc() if experiment.direction == "maximize" else trials.c.value.asc()
            mine = and_(trials.c.experiment_id == experiment_id, trials.c.state == "complete")
            best = select(trials.c.value).where(mine, trials.c.value.is_not(None)).order_by(order).limit(1)
            stmt = (
                select(*_TRIAL_COLUMNS)
                .where(mine, trials.c.value == best.scalar_subquery())
                .order_by(trials.c.trial_number + 0)  # "+ 0": SQLite would otherwise scan by trial number
                .limit(1)
            )
            row = conn.execute(stmt).first()
            return None if row is None else _trial(row)

        return self.db.run(work, write=False)

    def trial_table(
        self,
        experiment_ids: Sequence[int] | None,
        states: Sequence[TrialState] | None,
        consume: Callable[[TrialTable], None],
        chunk_size: int = 5_000,
    ) -> None:
        latest = _latest_ttpt_id()
        times: list[Any] = [trials.c.created_at, trials.c.started_at, trials.c.completed_at]
        if self.db.dialect == "sqlite":  # naive UTC text: pandas parses it faster than row by row
            times = [type_coerce(column, String).label(column.name) for column in times]
        stmt = (
            select(
                trials.c.experiment_id,
                trials.c.id,
                trials.c.trial_number,
                trials.c.state,
                trials.c.value,
                *times,
                trials.c.params,
                trials.c.performance,
                ttpt_results.c.passed,
                ttpt_results.c.num_violations,
                ttpt_results.c.metrics,
            )
            .select_from(trials.outerjoin(ttpt_results, ttpt_results.c.id == latest))
            .order_by(trials.c.experiment_id, trials.c.trial_number)
        )
        if experiment_ids is not None:
            stmt = stmt.where(trials.c.experiment_id.in_(experiment_ids))
        if states is not None:
            stmt = stmt.where(trials.c.state.in_(states))

        def work(conn: Connection) -> None:
            for rows in conn.execution_options(yield_per=chunk_size).execute(stmt).partitions():
                table = TrialTable()
                (
                    table.experiment_id,
                    table.trial_id,
                    table.trial_number,
                    table.state,
                    table.value,
                    table.created_at,
                    table.started_at,
                    table.completed_at,
                    table.params,
                    table.performance,
                    passed,
                    table.ttpt_num_violations,
                    table.ttpt_metrics,
                ) = (list(column) for column in zip(*rows, strict=True))
                table.ttpt_passed = [None if p is None else bool(p) for p in passed]
                consume(table)

        self.db.run(work, write=False)

    # TTPT ------------------------------------------------------------------------------------

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        row = _ttpt_row(trial_id, new)
        return self.db.insert_one(ttpt_results, row, on_integrity=lambda exc: _missing("trial", trial_id))

    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        def work(conn: Connection) -> list[TTPTResult]:
            stmt = select(ttpt_results).order_by(ttpt_results.c.id)
            if trial_id is not None:
                if conn.execute(select(trials.c.id).where(trials.c.id == trial_id)).first() is None:
                    raise _missing("trial", trial_id)
                stmt = stmt.where(ttpt_results.c.trial_id == trial_id)
            if experiment_id is not None:
                self._experiment(conn, experiment_id)
                stmt = stmt.join(trials, trials.c.id == ttpt_results.c.trial_id).where(
                    trials.c.experiment_id == experiment_id
                )
            return [_ttpt(row) for row in conn.execute(stmt)]

        return self.db.run(work, write=False)

    def close(self) -> None:
        self.db.dispose()


def _listing_statement(dialect: str, with_trials: bool, given: set[str]) -> Select[Any]:
    """The experiments listing with its aggregates, filtered by the named bound parameters."""
    counts = [func.sum(case((trials.c.state == state, 1), else_=0)).label(f"n_{state}") for state in _STATES]
    per_trial = (
        select(
            trials.c.experiment_id,
            func.count().label("n_trials"),
            *counts,
            func.max(case((trials.c.state == "complete", trials.c.value))).label("best_max"),
            func.min(case((trials.c.state == "complete", trials.c.value))).label("best_min"),
        )
        .group_by(trials.c.experiment_id)
        .subquery("per_trial")
    )
    per_ttpt = (
        select(
            trials.c.experiment_id,
            func.count().label("ttpt_total"),
            func.sum(case((ttpt_results.c.passed.is_(False), 1), else_=0)).label("ttpt_failed"),
        )
        .select_from(ttpt_results.join(trials, ttpt_results.c.trial_id == trials.c.id))
        .group_by(trials.c.experiment_id)
        .subquery("per_ttpt")
    )
    ttpt_total = func.coalesce(per_ttpt.c.ttpt_total, 0)
    ttpt_failed = func.coalesce(per_ttpt.c.ttpt_failed, 0)
    source = experiments.outerjoin(per_ttpt, per_ttpt.c.experiment_id == experiments.c.id)
    columns: list[Any] = [experiments, ttpt_total.label("ttpt_total_"), ttpt_failed.label("ttpt_failed_")]
    if with_trials:  # the per-trial aggregates scan every trial: only when asked for
        best = case((experiments.c.direction == "maximize", per_trial.c.best_max), else_=per_trial.c.best_min)
        source = source.outerjoin(per_trial, per_trial.c.experiment_id == experiments.c.id)
        columns += [per_trial, best.label("best_value")]
    conditions: list[ColumnElement[bool]] = []
    if "ids" in given:
        conditions.append(experiments.c.id.in_(bindparam("ids", expanding=True)))
    if "max_rate" in given:
        conditions.append(ttpt_total > 0)
        conditions.append(ttpt_failed <= bindparam("max_rate", type_=Double()) * ttpt_total)
    if "template" in given:
        conditions.append(experiments.c.template == bindparam("template"))
    if "mode" in given:
        conditions.append(experiments.c.mode == bindparam("mode"))
    if "name_part" in given:
        finder = func.instr if dialect == "sqlite" else func.strpos
        conditions.append(finder(experiments.c.name, bindparam("name_part", type_=String())) > 0)
    if "min_best" in given:
        threshold: BindParameter[float] = bindparam("min_best", type_=Double())
        conditions.append(
            or_(
                and_(experiments.c.direction == "maximize", per_trial.c.best_max >= threshold),
                and_(experiments.c.direction == "minimize", per_trial.c.best_min <= threshold),
            )
        )
    if "after" in given:
        conditions.append(experiments.c.created_at >= bindparam("after"))
    if "before" in given:
        conditions.append(experiments.c.created_at < bindparam("before"))
    return select(*columns).select_from(source).where(and_(true(), *conditions)).order_by(experiments.c.id)


def _latest_ttpt_id() -> ScalarSelect[Any]:
    """The id of the latest TTPT result of the enclosing query's trial."""
    newer = ttpt_results.alias("latest_ttpt")
    return select(func.max(newer.c.id)).where(newer.c.trial_id == trials.c.id).correlate(trials).scalar_subquery()


def _ttpt_row(trial_id: int, new: NewTTPTResult) -> dict[str, Any]:
    return {
        "trial_id": trial_id,
        "passed": new.passed,
        "num_violations": new.num_violations,
        "metrics": new.metrics,
        "violations": new.violations,
        "created_at": new.created_at,
    }


def _missing(kind: str, record_id: int) -> NotFoundError:
    return NotFoundError(f"{kind} {record_id} does not exist")


def _is_unique_violation(exc: IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return bool(code == "23505")
    return "UNIQUE constraint failed" in str(exc.orig)
