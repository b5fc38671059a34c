"""The SQL repository (SQLite, PostgreSQL, MariaDB and MySQL) on SQLAlchemy Core over the declarative tables.

Rows are built from records by the codec (`tracker.codec.to_row`) and read back into records by
`tracker.sql.rows`, so the records' fields are the one list of what is stored. Tags, notes, step
metrics and artifacts are in `tracker.sql.attachments`; blobs in `tracker.sql.blob_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, Select, delete, select, text, update
from sqlalchemy.exc import IntegrityError

from tracker.errors import DuplicateStepError, DuplicateTrialError, NotFoundError, TrackerError
from tracker.sql import attachments, performance, schema
from tracker.sql.blob_store import BlobStore
from tracker.sql.engine import session_lock
from tracker.sql.errors import is_unique_violation
from tracker.sql.models import MYSQL_DIALECTS, experiments, trial_performance, trials, ttpt_results
from tracker.sql.queries import latest_ttpt_id, listing_parameters, listing_statement, trial_table_statement
from tracker.sql.rows import (
    EXPERIMENT_COLUMNS,
    OWNERS,
    TRIAL_COLUMNS,
    TTPT_COLUMNS,
    RecordReader,
    code_contents,
    tag_rows,
    to_sql,
)
from tracker.sql.unit_of_work import UnitOfWork, Writer, partitions
from tracker.store import codec
from tracker.store.location import StoreLocation, prepare_path
from tracker.store.records import (
    TRIAL_STATES,
    Artifact,
    Experiment,
    ExperimentQuery,
    ExperimentStats,
    JSONValue,
    NewArtifact,
    NewExperiment,
    NewStepMetric,
    NewTrial,
    NewTTPTResult,
    Owner,
    StepMetric,
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
        read_only: bool = False,
    ) -> None:
        self.location = location
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

    def serialize(self, key: str) -> None:
        if self.uow.dialect in MYSQL_DIALECTS:  # a named lock, released when the transaction ends
            self.uow.write(lambda conn: session_lock(conn, "serialize", key))
            return
        if self.uow.dialect != "postgresql":
            return  # SQLite's write transactions take the write lock when they begin
        statement = text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
        self.uow.write(lambda conn: conn.execute(statement, {"space": _SERIALIZE_SPACE, "key": key}))

    # experiments ---------------------------------------------------------------------------

    def add_experiment(self, new: NewExperiment) -> int:
        row, tags = to_sql(codec.to_row(new), Experiment, {})

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
            return [_stats(row, e, with_trials) for row, e in zip(rows, found, strict=True)]

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
            candidates = attachments.owned_blobs(conn, experiment_id)
            conn.execute(delete(trial_performance).where(trial_performance.c.experiment_id == experiment_id))
            if conn.execute(delete(experiments).where(experiments.c.id == experiment_id)).rowcount == 0:
                raise _missing("experiment", experiment_id)
            self.blobs.collect(conn, candidates)

        self.uow.write(work)

    # trials --------------------------------------------------------------------------------

    def add_trials(self, experiment_id: int, new_trials: Sequence[NewTrial]) -> list[int]:
        rows, checks = codec.trial_rows(new_trials)
        contents = code_contents(rows, Trial)
        sqlite = self.uow.dialect == "sqlite"
        numbers = [] if sqlite else performance.rows(experiment_id, rows)

        def fill(writer: Writer) -> list[int]:
            blob_ids = self.blobs.ensure(writer, contents) if contents else {}
            tagged: list[dict[str, Any]] = []
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
            if checks:
                writer.insert(ttpt_results, [{**row, "trial_id": ids[i]} for i, row in checks.items()])
            tag_lists = [tag_rows("trial", trial_id, tags) for trial_id, tags in zip(ids, tagged, strict=True) if tags]
            if tag_lists:
                writer.execute(OWNERS["trial"].tags.insert(), [row for rows_ in tag_lists for row in rows_])
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
        simple = not checks and not contents and not numbers and not any(row.get("tags") for row in rows)
        try:
            return self.uow.insert(fill, on_integrity=conflict, one_statement=len(rows) == 1 and simple)
        except NotFoundError:
            if not contents or not self._experiment_exists(experiment_id):
                raise
            self.blobs.forget()  # a cached blob was collected by another process's delete: add it again
            return self.uow.insert(fill, on_integrity=conflict)

    def _experiment_exists(self, experiment_id: int) -> bool:
        query = select(experiments.c.id).where(experiments.c.id == experiment_id)
        return self.uow.read(lambda conn: conn.execute(query).first() is not None)

    def set_strategy(
        self, trial_id: int, code: str | None, template: str | None, generation_method: str | None
    ) -> None:
        values = codec.to_values(
            Trial, {"strategy_code": code, "strategy_template": template, "generation_method": generation_method}
        )
        contents = code_contents([values], Trial)

        def fill(writer: Writer) -> None:
            if not writer.execute(select(trials.c.id).where(trials.c.id == trial_id)):
                raise _missing("trial", trial_id)
            row, _ = to_sql(dict(values), Trial, self.blobs.ensure(writer, contents) if contents else {})
            writer.execute(update(trials).where(trials.c.id == trial_id).values(row))

        self.uow.insert(fill)

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
            for rows in partitions(conn, stmt, chunk_size):
                names = stmt.selected_columns.keys()
                columns = {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}
                columns["ttpt.passed"] = [None if p is None else bool(p) for p in columns["ttpt.passed"]]
                found = self.records.tags(conn, "trial", columns["id"])
                columns["tags"] = [found.get(i, {}) for i in columns["id"]]
                if with_code:
                    texts = self.blobs.texts(conn, columns["strategy_code"])
                    columns["strategy_code"] = [None if i is None else texts[i] for i in columns["strategy_code"]]
                consume(TrialTable(columns))

        self.uow.read(work)

    # tags, notes, step metrics, artifacts ----------------------------------------------------

    def set_tags(self, owner: Owner, tags: Mapping[str, str | None]) -> None:
        checked = codec.check_tag_changes(tags)
        self.uow.write(lambda conn: attachments.set_tags(conn, owner, checked))

    def set_note(self, owner: Owner, note: str | None) -> None:
        record_type = Experiment if owner.kind == "experiment" else Trial
        checked = codec.to_values(record_type, {"note": note})["note"]
        self.uow.write(lambda conn: attachments.set_note(conn, owner, checked))

    def add_step_metrics(self, trial_id: int, metrics: Sequence[NewStepMetric]) -> None:
        checked = codec.step_metrics(trial_id, metrics)

        def work(conn: Connection) -> None:
            taken = attachments.add_step_metrics(conn, trial_id, checked)
            if taken:
                raise DuplicateStepError(trial_id, taken)

        if checked:
            self.uow.write(work)
        else:
            self.get_trial(trial_id)

    def list_step_metrics(self, *, trial_id: int | None = None, experiment_id: int | None = None) -> list[StepMetric]:
        return self.uow.read(lambda conn: attachments.list_step_metrics(conn, trial_id, experiment_id))

    def add_artifact(self, owner: Owner, new: NewArtifact, *, replace: bool = False) -> Artifact:
        checked, sha = codec.check_artifact(new)

        table = OWNERS[owner.kind].records

        def fill(writer: Writer) -> None:
            if not writer.execute(select(table.c.id).where(table.c.id == owner.id)):
                raise _missing(owner.kind, owner.id)
            attachments.add_artifact(writer, self.blobs, owner, checked, sha, replace)

        self.uow.insert(fill)
        return Artifact(owner, checked.name, checked.media_type, len(checked.data), sha, checked.created_at)

    def list_artifacts(self, owner: Owner, *, of_trials: bool = False) -> list[Artifact]:
        return self.uow.read(lambda conn: attachments.list_artifacts(conn, owner, of_trials))

    def read_artifact(self, owner: Owner, name: str) -> bytes:
        return self.uow.read(lambda conn: attachments.read_artifact(conn, self.blobs, owner, name))

    # TTPT ------------------------------------------------------------------------------------

    def add_ttpt_result(self, trial_id: int, new: NewTTPTResult) -> int:
        row = {**codec.to_row(new), "trial_id": trial_id}
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
            return [TTPTResult(**row._mapping) for row in conn.execute(stmt)]

        return self.uow.read(work)

    def browser(self) -> Browser[Any]:
        if self._browser is None:
            from tracker.sql.browse import SqlBrowser

            self._browser = SqlBrowser(self.uow, self.records)
        return self._browser

    def close(self) -> None:
        self.uow.dispose()


def _stats(row: Row[Any], experiment: Experiment, with_trials: bool) -> ExperimentStats:
    return ExperimentStats(
        experiment=experiment,
        n_trials=int(row.n_trials or 0) if with_trials else 0,
        n_by_state={state: int(getattr(row, f"n_{state}") or 0) for state in TRIAL_STATES} if with_trials else {},
        best_value=row.best_value if with_trials else None,
        ttpt_total=int(row.ttpt_total_),
        ttpt_failed=int(row.ttpt_failed_),
        n_ranked=int(row.n_ranked or 0) if with_trials else 0,
    )
