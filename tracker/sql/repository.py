"""The SQL repository (SQLite, PostgreSQL, MariaDB and MySQL) on SQLAlchemy Core over the declarative tables.

Rows are built from records by `tracker.store.checks.to_row` (values encoded by the codec) and
read back into records, values decoded, by `tracker.sql.rows`; so the records' fields are the one
list of what is stored. Tags, notes, step
metrics and artifacts are in `tracker.sql.attachments`; blobs in `tracker.sql.blob_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, delete, select, text, update
from sqlalchemy.exc import IntegrityError

from tracker.errors import DuplicateTrialError, NotFoundError, TrackerError
from tracker.sql import attachments, performance, returns, schema
from tracker.sql.annotating import AnnotationVerbs
from tracker.sql.annotating import missing as _missing
from tracker.sql.blob_store import BlobStore
from tracker.sql.engine import session_lock
from tracker.sql.errors import is_unique_violation
from tracker.sql.fast_insert import Writer
from tracker.sql.models import MYSQL_DIALECTS, experiments, trial_performance, trials, ttpt_results
from tracker.sql.queries import (
    best_trial_statement,
    listing_parameters,
    listing_statement,
    trial_list_statement,
    trial_table_statement,
)
from tracker.sql.rows import (
    EXPERIMENT_COLUMNS,
    OWNERS,
    TRIAL_COLUMNS,
    TTPT_COLUMNS,
    RecordReader,
    code_contents,
    experiment_stats,
    tag_rows,
    to_sql,
)
from tracker.sql.sqlite_reader import folder_is_unwritable
from tracker.sql.unit_of_work import UnitOfWork, partitions
from tracker.store import checks
from tracker.store import returns as packing
from tracker.store.location import StoreLocation, prepare_path
from tracker.store.records import (
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    JSONValue,
    NewExperiment,
    NewTrial,
    NewTTPTResult,
    Owner,
    Synchronous,
    Trial,
    TrialQuery,
    TrialState,
    TrialTable,
    TTPTResult,
)
from tracker.store.repository import Repository

_SERIALIZE_SPACE = 0x7472_6B73  # "trks": the first key of serialize's advisory locks

if TYPE_CHECKING:
    from tracker.read.browser import Browser


class SqlRepository(AnnotationVerbs, returns.SqlReturns, Repository):
    """Repository on a SQLAlchemy URL; every method is one transaction of the unit of work."""

    def __init__(
        self,
        location: StoreLocation,
        *,
        synchronous: Synchronous = "normal",
        auto_upgrade: bool = False,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.location = location
        if location.path is not None and folder_is_unwritable(location.path):
            read_only = True  # nothing can be written where no -wal or -journal file can be made
        prepare_path(location, create=create and not read_only)
        self.uow = UnitOfWork(location, synchronous=synchronous, read_only=read_only)
        self.blobs = BlobStore(self.uow.dialect)
        self.records = RecordReader(self.blobs)
        self._listings: dict[tuple[bool, tuple[str, ...]], Select[Any]] = {}
        self._browser: Browser[Any] | None = None
        try:
            if read_only:  # a reader creates, upgrades and converts nothing
                schema.check(self.uow)
            else:
                schema.prepare(self.uow, auto_upgrade=auto_upgrade, create=create)
                self.uow.use_wal()
        except TrackerError:
            self.uow.dispose()
            raise

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        with self.uow.transaction(write=write):
            yield

    def in_transaction(self) -> bool:
        return self.uow.in_transaction()

    def _outside(self) -> bool:
        return not self.uow.in_transaction()

    def serialize(self, key: str) -> None:
        if self.uow.dialect in MYSQL_DIALECTS:  # a named lock, released when the transaction ends
            self.uow.write(lambda conn: session_lock(conn, "serialize", key))
            return
        if self.uow.dialect != "postgresql":
            return  # SQLite's write transactions take the write lock when they begin
        statement = text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
        self.uow.write(lambda conn: conn.execute(statement, {"space": _SERIALIZE_SPACE, "key": key}))

    def lock_experiment(self, experiment_id: int) -> None:
        if self.uow.dialect == "sqlite":  # the write transaction holds the database's write lock
            self.get_experiment(experiment_id)
        else:
            self.uow.write(lambda conn: attachments.lock_experiment(conn, experiment_id))

    # experiments ---------------------------------------------------------------------------

    def add_experiment(self, new: NewExperiment) -> int:
        row, tags = to_sql(checks.to_row(new), Experiment, {})

        def fill(writer: Writer) -> int:
            [experiment_id] = writer.insert(experiments, [row])
            if tags:
                writer.execute(OWNERS["experiment"].tags.insert(), tag_rows("experiment", experiment_id, tags))
            return experiment_id

        return self.uow.insert(fill, one_statement=not tags)

    def get_experiment(self, experiment_id: int) -> Experiment:
        return self.uow.read(lambda conn: self._experiment(conn, experiment_id))

    def _experiment(self, conn: Connection, experiment_id: int) -> Experiment:
        row = conn.execute(select(*EXPERIMENT_COLUMNS).where(experiments.c.id == experiment_id)).first()
        if row is None:
            raise _missing("experiment", experiment_id)
        return self.records.experiments(conn, [row])[0]

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
            rows = conn.execute(stmt, given).all()
            found = self.records.experiments(conn, rows)
            return [experiment_stats(row, e, with_trials) for row, e in zip(rows, found, strict=True)]

        return self.uow.read(work)

    def set_summary(self, experiment_id: int, summary: JSONValue) -> None:
        self._update(experiments, experiment_id, "experiment", checks.to_values(Experiment, {"summary": summary}))

    def _update(self, table: Any, record_id: int, kind: str, values: dict[str, Any]) -> None:
        def work(conn: Connection) -> None:
            if conn.execute(update(table).where(table.c.id == record_id).values(values)).rowcount == 0:
                raise _missing(kind, record_id)

        self.uow.write(work)

    def delete_experiment(self, experiment_id: int) -> None:
        def work(conn: Connection) -> None:
            candidates = attachments.owned_blobs(conn, experiment_id)
            conn.execute(delete(trial_performance).where(trial_performance.c.experiment_id == experiment_id))
            if conn.execute(delete(experiments).where(experiments.c.id == experiment_id)).rowcount == 0:
                raise _missing("experiment", experiment_id)
            self.blobs.collect(conn, candidates)

        self.uow.write(work)

    # trials --------------------------------------------------------------------------------

    def add_trials(self, experiment_id: int, new_trials: Sequence[NewTrial]) -> list[int]:
        rows, ttpt_rows = checks.trial_rows(new_trials)
        series = packing.of_batch(new_trials)
        contents = code_contents(rows, Trial)
        sqlite = self.uow.dialect == "sqlite"
        numbers = [] if sqlite else performance.rows(experiment_id, rows)

        def fill(writer: Writer) -> list[int]:
            blob_ids = self.blobs.ensure(writer, contents) if contents else {}
            ids = _insert_trials(writer, experiment_id, rows, ttpt_rows, blob_ids, numbers, sqlite)
            returns.insert(writer, self.blobs, [(ids[i], s) for i, s in series.items()])
            return ids

        def conflict(exc: IntegrityError) -> TrackerError:
            if is_unique_violation(exc):
                taken = self.trial_numbers(experiment_id)
                clash = sorted(t.trial_number for t in new_trials if t.trial_number in taken)
                return DuplicateTrialError(experiment_id, clash)
            return _missing("experiment", experiment_id)

        if not rows:
            self.get_experiment(experiment_id)
            return []
        extra = ttpt_rows or series or contents or numbers or any(row.get("tags") for row in rows)
        try:
            return self.uow.insert(fill, on_integrity=conflict, one_statement=len(rows) == 1 and not extra)
        except NotFoundError:
            shared = contents or any(s.index is not None for s in series.values())
            if not shared or not self._experiment_exists(experiment_id):
                raise
            # A cached blob was collected by another process's delete, or added by another thread's
            # transaction that did not commit: add it again.
            self.blobs.forget()
            return self.uow.insert(fill, on_integrity=conflict)

    def _experiment_exists(self, experiment_id: int) -> bool:
        query = select(experiments.c.id).where(experiments.c.id == experiment_id)
        return self.uow.read(lambda conn: conn.execute(query).first() is not None)

    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        values = checks.to_values(
            Trial, {"strategy_code": code, "strategy_template": template, "generation_method": generation_method}
        )
        contents = code_contents([values], Trial)

        def fill(writer: Writer) -> None:
            found = writer.execute(select(trials.c.strategy_code_id).where(trials.c.id == trial_id))
            if not found:
                raise _missing("trial", trial_id)
            row, _ = to_sql(dict(values), Trial, self.blobs.ensure(writer, contents) if contents else {})
            writer.execute(update(trials).where(trials.c.id == trial_id).values(row))
            if found[0][0] != row.get("strategy_code_id"):
                self.blobs.collect_one(writer, found[0][0])  # the replaced code, unless another trial has it

        self.blobs.fresh(
            lambda: self.uow.insert(fill, on_integrity=lambda exc: _missing("trial", trial_id)), retry=self._outside()
        )

    def get_trial(self, trial_id: int) -> Trial:
        def work(conn: Connection) -> Trial:
            row = conn.execute(select(*TRIAL_COLUMNS).where(trials.c.id == trial_id)).first()
            if row is None:
                raise _missing("trial", trial_id)
            return self.records.trials(conn, [row])[0]

        return self.uow.read(work)

    def list_trials(self, experiment_id: int, query: TrialQuery) -> list[Trial]:
        def work(conn: Connection) -> list[Trial]:
            experiment = self._experiment(conn, experiment_id)
            stmt = trial_list_statement(experiment, query)
            return self.records.trials(conn, conn.execute(stmt).all())

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
            stmt = best_trial_statement(experiment)
            row = conn.execute(stmt).first()
            return None if row is None else self.records.trials(conn, [row])[0]

        return self.uow.read(work)

    def trial_table(
        self,
        experiment_ids: Sequence[int] | None,
        states: Sequence[TrialState] | None,
        consume: Callable[[TrialTable], None],
        chunk_size: int = 5_000,
        *,
        tags: Mapping[str, str] | None = None,
        with_code: bool = False,
    ) -> None:
        stmt = trial_table_statement(self.uow.dialect, experiment_ids, states, tags, with_code)

        def work(conn: Connection) -> None:
            names = stmt.selected_columns.keys()
            for rows in partitions(conn, stmt, chunk_size):
                consume(self.records.table(conn, names, rows, with_code))

        self.uow.read(work)

    # TTPT ------------------------------------------------------------------------------------

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        row = {**checks.to_row(new), "trial_id": trial_id}
        return self.uow.insert(
            lambda writer: writer.insert(ttpt_results, [row])[0],
            on_integrity=lambda exc: _missing("trial", trial_id),
            one_statement=True,
        )

    def list_ttpt_results(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[TTPTResult]:
        def work(conn: Connection) -> list[TTPTResult]:
            stmt = select(*TTPT_COLUMNS).order_by(ttpt_results.c.id)
            if trial_id is not None:
                attachments.require(conn, Owner("trial", trial_id))
                stmt = stmt.where(ttpt_results.c.trial_id == trial_id)
            if experiment_id is not None:
                self._experiment(conn, experiment_id)
                stmt = stmt.join(trials, trials.c.id == ttpt_results.c.trial_id).where(
                    trials.c.experiment_id == experiment_id
                )
            return self.records.ttpt_results(conn.execute(stmt))

        return self.uow.read(work)

    def browser(self) -> Browser[Any]:
        if self._browser is None:
            from tracker.sql.browse import SqlBrowser

            self._browser = SqlBrowser(self.uow, self.records)
        return self._browser

    def close(self) -> None:
        self.uow.dispose()


def _insert_trials(
    writer: Writer,
    experiment_id: int,
    rows: list[dict[str, Any]],
    ttpt_rows: dict[int, dict[str, Any]],
    blob_ids: dict[str, int],
    numbers: list[dict[str, Any]],
    sqlite: bool,
) -> list[int]:
    """Insert checked trial rows, their performance metrics (`numbers`, or made by SQLite from the
    rows), their TTPT results (by position) and their tags; their ids."""
    tagged: list[dict[str, str]] = []
    sql_rows = []
    for row in rows:
        sql_row, tags = to_sql(dict(row, experiment_id=experiment_id), Trial, blob_ids)
        sql_rows.append(sql_row)
        tagged.append(tags)
    ids = writer.insert(trials, sql_rows)
    if sqlite:  # SQLite makes the rows itself, from the trials just inserted (consecutive ids)
        writer.execute(performance.SQLITE_FILL, [{"first": ids[0], "last": ids[-1]}], keep=True)
    elif numbers:
        writer.execute(performance.ADD, numbers, keep=True)
    if ttpt_rows:
        writer.insert(ttpt_results, [{**row, "trial_id": ids[i]} for i, row in ttpt_rows.items()])
    tag_lists = [tag_rows("trial", trial_id, tags) for trial_id, tags in zip(ids, tagged, strict=True) if tags]
    if tag_lists:
        writer.execute(OWNERS["trial"].tags.insert(), [row for rows_ in tag_lists for row in rows_])
    return ids
