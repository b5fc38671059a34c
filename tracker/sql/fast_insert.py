"""The insert writers of the SQL unit of work and the statement compiler behind them.

A `Writer` writes within the current transaction. On SQLite (the fast path) and for MariaDB's
one-row INSERT ... RETURNING, statements are compiled once by SQLAlchemy (`Statements`) and run
on the DBAPI cursor or with `exec_driver_sql`, their parameters bound in one pass: rows here are
the checks' output (`tracker.store.checks.to_row`), already in the form the driver takes, so only
what the checks leave to the column type is done (JSON text, SQLite's timestamp text, MariaDB's
infinities); the column types' own checks and conversions are not run again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

from sqlalchemy import JSON, Connection, Dialect, Executable, Insert, Table, insert

from tracker.errors import StoreError
from tracker.sql.models import UTCDateTime
from tracker.store.codec import dumps


class Writer(Protocol):
    """Writes within the current transaction (the SQLite fast path, or a SQLAlchemy connection)."""

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows (with an `id` primary key) and return their ids in order."""

    def execute(
        self, statement: Executable, rows: list[dict[str, Any]] | None = None, *, keep: bool = False
    ) -> list[Any]:
        """Run a statement without expanding parameters (once per row when given several) and
        return the rows it selected. `keep` caches its compiled form: only for statements that
        live as long as the store."""


class Statements:
    """Statements compiled once for a dialect: tables' INSERTs and statements that live as long
    as the store."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[tuple[Any, tuple[str, ...], bool], _Compiled] = {}

    def compiled(
        self, statement: Any, names: tuple[str, ...] = (), *, keep: bool = True, returning: bool = False
    ) -> _Compiled:
        """`statement` (a table: its INSERT of the `names` columns, `RETURNING id` when
        `returning`) compiled for this dialect, once when `keep` (for tables and statements that
        live as long as the store)."""
        key = (statement, names, returning)
        compiled = self._compiled.get(key) if keep else None
        if compiled is None:
            target = insert(statement) if isinstance(statement, Table) else statement
            if returning:
                target = target.returning(statement.c.id)
            compiled = _Compiled(target, self.dialect, names)
            if keep:
                self._compiled[key] = compiled
        return compiled


class _Compiled:
    """A statement compiled once by SQLAlchemy. An INSERT of a table's columns binds each row's
    values through the columns' processors; any other statement through SQLAlchemy's own
    parameter construction (which keeps the values bound inside the statement)."""

    def __init__(self, statement: Any, dialect: Dialect, names: tuple[str, ...]) -> None:
        self.compiled = statement.compile(dialect=dialect, column_keys=list(names) if names else None)
        self.sql = str(self.compiled)
        self.positional = self.compiled.positional
        self.order = tuple((self.compiled.positiontup or ()) if self.positional else self.compiled.bind_names.values())
        table = getattr(statement, "table", None) if names else None
        self.plan = (
            tuple((name, _processor(table.c[name], dialect)) for name in self.order) if table is not None else None
        )
        self.processors = (
            {}
            if self.plan is not None
            else {
                name: self.compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                for name in self.order
            }
        )

    def parameters(self, row: dict[str, Any]) -> Any:
        """The row's parameters for the DBAPI: a tuple (qmark, format) or a dict (pyformat)."""
        if self.plan is not None:
            out = []
            for name, process in self.plan:
                value = row.get(name)
                out.append(value if value is None or process is None else process(value))
        else:
            values = self.compiled.construct_params(row)
            out = [
                value if value is None or (process := self.processors.get(name)) is None else process(value)
                for name, value in ((name, values[name]) for name in self.order)
            ]
        return tuple(out) if self.positional else dict(zip(self.order, out, strict=True))


class SQLiteWriter:
    """The fast path's `Writer`: compiled statements on the DBAPI cursor."""

    def __init__(self, statements: Statements, cursor: sqlite3.Cursor) -> None:
        self.statements = statements
        self.cursor = cursor

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        compiled = self.statements.compiled(table, _bound_columns(rows))
        if len(rows) == 1:
            self.cursor.execute(compiled.sql, compiled.parameters(rows[0]))
            return [int(self.cursor.lastrowid or 0)]
        self.cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        # The write lock is held, and AUTOINCREMENT gives each row max(counter, max id) + 1, so the
        # batch's ids are consecutive and end at the last one inserted.
        last = int(self.cursor.execute("SELECT last_insert_rowid()").fetchone()[0])
        return list(range(last - len(rows) + 1, last + 1))

    def execute(
        self, statement: Executable, rows: list[dict[str, Any]] | None = None, *, keep: bool = False
    ) -> list[Any]:
        names = tuple(rows[0]) if rows and isinstance(statement, Insert) else ()
        compiled = self.statements.compiled(statement, names, keep=keep)
        if rows is not None and len(rows) > 1:
            self.cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
            return []
        return self.cursor.execute(compiled.sql, compiled.parameters(rows[0] if rows else {})).fetchall()


class CoreWriter:
    """The `Writer` on a SQLAlchemy connection: INSERT ... RETURNING, insertmanyvalues; one
    INSERT per row and its lastrowid where the server has no RETURNING (MySQL, MariaDB < 10.5)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        if not self.conn.dialect.insert_returning:
            # Concurrent inserts may interleave AUTO_INCREMENT values, so a batch's ids cannot be
            # inferred from the first one: each row reports its own.
            add = insert(table)
            return [int(self.conn.execute(add, row).lastrowid) for row in rows]
        if len(rows) == 1:
            return [int(self.conn.execute(insert(table).returning(table.c.id), rows[0]).scalar_one())]
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return [int(i) for i in self.conn.execute(stmt, rows).scalars()]

    def execute(
        self, statement: Executable, rows: list[dict[str, Any]] | None = None, *, keep: bool = False
    ) -> list[Any]:
        result = self.conn.execute(statement, rows)
        return list(result) if result.returns_rows else []


class MySQLWriter(CoreWriter):
    """MariaDB's one-row INSERT ... RETURNING, compiled once and run with `exec_driver_sql`, which
    keeps SQLAlchemy's error handling and disconnect detection but skips its per-call statement
    cache lookup and type processing. Measured by `bench/ab_mysql_insert.py` on MariaDB 10.11
    (2 cores, loopback; rounds alternating the two paths in one process): a log_trial took a
    median 734 and 804 µs this way against 1,050 and 1,045 µs through Core's execute, in two runs.
    Batches keep Core's insertmanyvalues."""

    def __init__(self, statements: Statements, conn: Connection) -> None:
        super().__init__(conn)
        self.statements = statements

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        if len(rows) != 1:
            return super().insert(table, rows)
        compiled = self.statements.compiled(table, _bound_columns(rows), returning=True)
        return [int(self.conn.exec_driver_sql(compiled.sql, compiled.parameters(rows[0])).scalar_one())]


def _bound_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns of a batch's INSERT: those with a value in some row. Columns left out take
    their NULL default, and binding fewer parameters is a third of a batch insert's time when
    most optional fields are empty (7 of a trial's 14)."""
    first = rows[0]
    if len(rows) == 1:
        return tuple(name for name, value in first.items() if value is not None)
    return tuple(
        name for name, value in first.items() if value is not None or any(row[name] is not None for row in rows)
    )


def _processor(column: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """What binding a checked value of the column takes, in one pass. Rows here are the checks'
    output, never None-wrapped: numbers are floats, flags bools, counts ints, text str, times
    aware UTC, JSON values storage form. On SQLite, sqlite3 binds all of these as they are but
    JSON (the codec's text, what the engine's serializer writes) and times (the text the DATETIME
    processor writes); the column types' processors (float(), the bool check) would only run the
    checks again. Elsewhere the column's bind processor (MariaDB's infinities, naive UTC times)."""
    impl = column.type.dialect_impl(dialect)
    if isinstance(impl, JSON):
        return dumps
    if dialect.name == "sqlite":
        return UTCDateTime.sqlite_text if isinstance(impl, UTCDateTime) else None
    process: Callable[[Any], Any] | None = impl.bind_processor(dialect)
    return process


def sqlite_driver(conn: Connection) -> sqlite3.Connection:
    return as_sqlite(conn.connection.driver_connection)


def as_sqlite(driver: Any) -> sqlite3.Connection:
    if not isinstance(driver, sqlite3.Connection):
        raise StoreError("the SQLite connection is closed")
    return driver


class KeptConnection:
    """Holds a thread's checked-out connection and checks it in when closed or collected."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def close(self) -> None:
        raw, self.raw = self.raw, None
        if raw is not None:
            with suppress(Exception):
                raw.close()

    def __del__(self) -> None:
        self.close()
