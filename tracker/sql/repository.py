"""The SQL repository (SQLite and PostgreSQL) on SQLAlchemy Core over the declarative tables.

Rows are built from records by the codec (`tracker.codec.to_row`) and read back into records
column by column, so the records' fields are the one list of what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, select, text, update
from sqlalchemy.exc import IntegrityError

from tracker import codec, schema
from tracker.errors import DuplicateTrialError, NotFoundError, TrackerError
from tracker.records import (
    TRIAL_STATES,
    TRIAL_TABLE_COLUMNS,
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
from tracker.sql.errors import is_unique_violation
from tracker.sql.models import experiments, trials, ttpt_results
from tracker.sql.queries import (
    EXPERIMENT_COLUMNS,
    TRIAL_COLUMNS,
    TTPT_COLUMNS,
    latest_ttpt_id,
    listing_parameters,
    listing_statement,
    trial_table_statement,
)
from tracker.sql.unit_of_work import Inserter, UnitOfWork
from tracker.urls import StoreLocation, prepare_path

_SERIALIZE_SPACE = 0x7472_6B73  # "trks": the first key of serialize's advisory locks


def _experiment(row: Row[Any]) -> Experiment:
    return Experiment(**{column.name: row._mapping[column.name] for column in EXPERIMENT_COLUMNS})


def _missing(kind: str, record_id: int) -> NotFoundError:
    return NotFoundError(f"{kind} {record_id} does not exist")


class SqlRepository(Repository):
    """Repository on a SQLAlchemy URL; every method is one transaction of the unit of work."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        synchronous: Synchronous = "normal",
        auto_upgrade: bool = False,
        create: bool = True,
    ) -> None:
        self.location = location
        prepare_path(location, create=create)
        self.uow = UnitOfWork(location, synchronous=synchronous)
        self._listings: dict[tuple[bool, tuple[str, ...]], Select[Any]] = {}
        try:
            schema.prepare(self.uow, auto_upgrade=auto_upgrade, create=create)
            self.uow.use_wal()
        except TrackerError:
            self.uow.dispose()
            raise

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        with self.uow.transaction(write=write):
            yield

    def serialize(self, key: str) -> None:
        if self.uow.dialect != "postgresql":
            return  # SQLite's write transactions take the write lock when they begin
        statement = text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
        self.uow.write(lambda conn: conn.execute(statement, {"space": _SERIALIZE_SPACE, "key": key}))

    # experiments ---------------------------------------------------------------------------

    def add_experiment(self, new: NewExperiment) -> int:
        row = codec.to_row(new)
        return self.uow.insert(lambda insert_rows: insert_rows(experiments, [row])[0], one_statement=True)

    def get_experiment(self, experiment_id: int) -> Experiment:
        return self.uow.read(lambda conn: self._experiment(conn, experiment_id))

    def _experiment(self, conn: Connection, experiment_id: int) -> Experiment:
        row = conn.execute(select(*EXPERIMENT_COLUMNS).where(experiments.c.id == experiment_id)).first()
        if row is None:
            raise _missing("experiment", experiment_id)
        return _experiment(row)

    def list_experiments(self, query: ExperimentQuery) -> list[ExperimentStats]:
        given = listing_parameters(query)
        with_trials = query.trial_stats or "min_best" in given
        shape = (with_trials, tuple(sorted(given)))
        stmt = self._listings.get(shape)
        if stmt is None:  # one statement per combination of filters, values bound at execution
            stmt = self._listings[shape] = listing_statement(self.uow.dialect, with_trials, set(given))
        if "ids" in given:
            given["ids"] = list(given["ids"])

        def work(conn: Connection) -> list[ExperimentStats]:
            return [_stats(row, with_trials) for row in conn.execute(stmt, given)]

        return self.uow.read(work)

    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        self._update(experiments, experiment_id, "experiment", codec.to_values(Experiment, {"summary": summary}))

    def _update(self, table: Any, record_id: int, kind: str, values: dict[str, Any]) -> None:
        def work(conn: Connection) -> None:
            if conn.execute(update(table).where(table.c.id == record_id).values(values)).rowcount == 0:
                raise _missing(kind, record_id)

        self.uow.write(work)

    def delete_experiment(self, experiment_id: int) -> None:
        def work(conn: Connection) -> None:
            if conn.execute(delete(experiments).where(experiments.c.id == experiment_id)).rowcount == 0:
                raise _missing("experiment", experiment_id)

        self.uow.write(work)

    # trials --------------------------------------------------------------------------------

    def add_trials(self, experiment_id: int, new_trials: Sequence[NewTrial]) -> list[int]:
        rows, checks = codec.trial_rows(new_trials)
        for row in rows:
            row["experiment_id"] = experiment_id

        def fill(insert_rows: Inserter) -> list[int]:
            ids = insert_rows(trials, rows)
            if checks:
                insert_rows(ttpt_results, [{**row, "trial_id": ids[i]} for i, row in checks.items()])
            return ids

        def conflict(exc: IntegrityError) -> TrackerError:
            if is_unique_violation(exc):
                taken = self.trial_numbers(experiment_id)
                return DuplicateTrialError(
                    experiment_id, sorted(t.trial_number for t in new_trials if t.trial_number in taken)
                )
            return _missing("experiment", experiment_id)

        if not rows:
            self.get_experiment(experiment_id)
            return []
        return self.uow.insert(fill, on_integrity=conflict, one_statement=len(rows) == 1 and not checks)

    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        values = {"strategy_code": code, "strategy_template": template, "generation_method": generation_method}
        self._update(trials, trial_id, "trial", codec.to_values(Trial, values))

    def get_trial(self, trial_id: int) -> Trial:
        def work(conn: Connection) -> Trial:
            row = conn.execute(select(*TRIAL_COLUMNS).where(trials.c.id == trial_id)).first()
            if row is None:
                raise _missing("trial", trial_id)
            return Trial(**row._mapping)

        return self.uow.read(work)

    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        def work(conn: Connection) -> list[Trial]:
            experiment = self._experiment(conn, experiment_id)
            stmt = select(*TRIAL_COLUMNS).where(trials.c.experiment_id == experiment_id)
            if query.states is not None:
                stmt = stmt.where(trials.c.state.in_(query.states))
            if query.ttpt_passed is not None:
                passed = select(ttpt_results.c.passed).where(ttpt_results.c.id == latest_ttpt_id()).scalar_subquery()
                stmt = stmt.where(passed.is_(query.ttpt_passed))
            if query.order_by == "value":
                ordered = trials.c.value.desc() if experiment.direction == "maximize" else trials.c.value.asc()
                stmt = stmt.order_by(trials.c.value.is_(None), ordered, trials.c.trial_number)
            else:
                stmt = stmt.order_by(trials.c.trial_number)
            if query.limit is not None:
                stmt = stmt.limit(query.limit)
            return [Trial(**row._mapping) for row in conn.execute(stmt)]

        return self.uow.read(work)

    def trial_numbers(self, experiment_id: int) -> set[int]:
        def work(conn: Connection) -> set[int]:
            self._experiment(conn, experiment_id)
            stmt = select(trials.c.trial_number).where(trials.c.experiment_id == experiment_id)
            return {int(n) for n in conn.execute(stmt).scalars()}

        return self.uow.read(work)

    def best_trial(self, experiment_id: int) -> Trial | None:
        def work(conn: Connection) -> Trial | None:
            experiment = self._experiment(conn, experiment_id)
            # Walk the (experiment_id, value) index from the best end to the first complete trial,
            # then take the lowest trial number among the trials with that value.
            order = trials.c.value.desc() if experiment.direction == "maximize" else trials.c.value.asc()
            mine = (trials.c.experiment_id == experiment_id) & (trials.c.state == "complete")
            best = select(trials.c.value).where(mine, trials.c.value.is_not(None)).order_by(order).limit(1)
            stmt = (
                select(*TRIAL_COLUMNS)
                .where(mine, trials.c.value == best.scalar_subquery())
                .order_by(trials.c.trial_number + 0)  # "+ 0": SQLite would otherwise scan by trial number
                .limit(1)
            )
            row = conn.execute(stmt).first()
            return None if row is None else Trial(**row._mapping)

        return self.uow.read(work)

    def trial_table(
        self,
        experiment_ids: Sequence[int] | None,
        states: Sequence[TrialState] | None,
        consume: Callable[[TrialTable], None],
        chunk_size: int = 5_000,
    ) -> None:
        stmt = trial_table_statement(self.uow.dialect, experiment_ids, states)

        def work(conn: Connection) -> None:
            for rows in conn.execution_options(yield_per=chunk_size).execute(stmt).partitions():
                columns = dict(zip(TRIAL_TABLE_COLUMNS, (list(c) for c in zip(*rows, strict=True)), strict=True))
                columns["ttpt.passed"] = [None if p is None else bool(p) for p in columns["ttpt.passed"]]
                consume(TrialTable(columns))

        self.uow.read(work)

    # TTPT ------------------------------------------------------------------------------------

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        row = {**codec.to_row(new), "trial_id": trial_id}
        return self.uow.insert(
            lambda insert_rows: insert_rows(ttpt_results, [row])[0],
            on_integrity=lambda exc: _missing("trial", trial_id),
            one_statement=True,
        )

    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        def work(conn: Connection) -> list[TTPTResult]:
            stmt = select(*TTPT_COLUMNS).order_by(ttpt_results.c.id)
            if trial_id is not None:
                if conn.execute(select(trials.c.id).where(trials.c.id == trial_id)).first() is None:
                    raise _missing("trial", trial_id)
                stmt = stmt.where(ttpt_results.c.trial_id == trial_id)
            if experiment_id is not None:
                self._experiment(conn, experiment_id)
                stmt = stmt.join(trials, trials.c.id == ttpt_results.c.trial_id).where(
                    trials.c.experiment_id == experiment_id
                )
            return [TTPTResult(**row._mapping) for row in conn.execute(stmt)]

        return self.uow.read(work)

    def close(self) -> None:
        self.uow.dispose()


def _stats(row: Row[Any], with_trials: bool) -> ExperimentStats:
    return ExperimentStats(
        experiment=_experiment(row),
        n_trials=int(row.n_trials or 0) if with_trials else 0,
        n_by_state={state: int(getattr(row, f"n_{state}") or 0) for state in TRIAL_STATES} if with_trials else {},
        best_value=row.best_value if with_trials else None,
        ttpt_total=int(row.ttpt_total_),
        ttpt_failed=int(row.ttpt_failed_),
    )
