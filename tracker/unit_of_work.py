"""The SQL unit of work: one engine per store, one transaction per call, retries, and the single
place where database errors become `tracker` errors."""

from __future__ import annotations

import logging
import os
import random
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, Table, create_engine, event, insert
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError, SQLAlchemyError

from tracker.errors import (
    CorruptStoreError,
    MigrationError,
    ReadOnlyStoreError,
    StoreConnectionError,
    StoreError,
    TrackerError,
)
from tracker.records import Synchronous
from tracker.urls import StoreLocation, mask_password
from tracker.values import decode_text, dumps

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 10
BUSY_TIMEOUT_MS = 30_000
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


class SqlDatabase:
    """Owns the engine for a store's lifetime and runs each unit of work in one transaction."""

    def __init__(self, location: StoreLocation, *, synchronous: Synchronous = "normal") -> None:
        self.location = location
        kwargs: dict[str, Any] = {"json_serializer": dumps, "json_deserializer": decode_text}
        if location.backend == "sqlite":
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        try:
            self.engine: Engine = create_engine(location.url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreConnectionError(
                f"cannot use the database URL {location.safe_url}: {mask_password(str(exc))}"
            ) from None
        self.dialect: str = self.engine.dialect.name
        self._prepared: dict[tuple[str, tuple[str, ...]], _PreparedInsert] = {}
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, synchronous)
        else:
            event.listen(self.engine, "checkout", _drop_dead_connection)

    def run(
        self,
        work: Callable[[Connection], T],
        *,
        write: bool,
        migrating: bool = False,
        autocommit: bool = False,
        on_integrity: Callable[[IntegrityError], TrackerError] | None = None,
    ) -> T:
        """Run `work` in one transaction and commit it; roll back and raise a TrackerError on failure.

        Busy databases, serialisation failures and deadlocks are retried with bounded back-off;
        an integrity error is turned into the error that `on_integrity` builds. With `migrating`,
        SQLite runs with foreign keys off (so that tables can be rebuilt) and checked before commit.
        """
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.engine.connect() as conn:
                    if write and self.dialect == "sqlite":
                        conn = conn.execution_options(tracker_write=True)
                    if migrating and self.dialect == "sqlite":
                        return self._migrate_sqlite(conn, work)
                    if autocommit:  # a single statement: the server makes it atomic
                        return work(conn.execution_options(isolation_level="AUTOCOMMIT"))
                    with conn.begin():
                        return work(conn)
            except IntegrityError as exc:
                if on_integrity is not None:
                    raise on_integrity(exc) from None
                raise self.translate(exc) from exc
            except DBAPIError as exc:
                if _is_transient(exc) and attempt + 1 < MAX_ATTEMPTS:
                    delay = min(2.0, 0.02 * 2**attempt) * (0.5 + random.random())  # noqa: S311
                    log.info("database busy (%s); retry %d in %.2fs", type(exc.orig).__name__, attempt + 1, delay)
                    time.sleep(delay)
                    continue
                raise self.translate(exc) from None
            except SQLAlchemyError as exc:
                raise self.translate(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def run_inserts(
        self,
        work: Callable[[Inserter], T],
        *,
        on_integrity: Callable[[IntegrityError], TrackerError] | None = None,
    ) -> T:
        """Run `work`, which inserts rows through the given inserter, in one write transaction.

        On SQLite this is the hot path: the statements are compiled once by SQLAlchemy and run on
        the pooled DBAPI connection with executemany; elsewhere it is Core INSERT ... RETURNING.
        Errors, retries and translation are the same as for `run`.
        """
        if self.dialect != "sqlite":
            return self.run(
                lambda conn: work(lambda table, rows: _core_insert(conn, table, rows)),
                write=True,
                on_integrity=on_integrity,
            )
        return self._run_sqlite_inserts(work, on_integrity)

    def insert_one(
        self, table: Table, row: dict[str, Any], *, on_integrity: Callable[[IntegrityError], TrackerError]
    ) -> int:
        """Insert one row and return its id. One statement is atomic by itself, so on a server it
        runs in autocommit: one round trip instead of three (BEGIN, INSERT, COMMIT)."""
        if self.dialect == "sqlite":
            return self._run_sqlite_inserts(lambda insert_rows: insert_rows(table, [row])[0], on_integrity)
        return self.run(
            lambda conn: _core_insert(conn, table, [row])[0], write=True, autocommit=True, on_integrity=on_integrity
        )

    def _run_sqlite_inserts(
        self, work: Callable[[Inserter], T], on_integrity: Callable[[IntegrityError], TrackerError] | None
    ) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._sqlite_inserts(work)
            except sqlite3.Error as raw:
                exc = DBAPIError.instance(None, None, raw, sqlite3.Error)
                if isinstance(exc, IntegrityError):
                    if on_integrity is not None:
                        raise on_integrity(exc) from None
                    raise self.translate(exc) from raw
                if isinstance(exc, DBAPIError) and _is_transient(exc) and attempt + 1 < MAX_ATTEMPTS:
                    time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
                    continue
                raise self.translate(exc) from None
            except SQLAlchemyError as exc:
                raise self.translate(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _sqlite_inserts(self, work: Callable[[Inserter], T]) -> T:
        raw = self.engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            cursor.execute("BEGIN IMMEDIATE")
            try:
                result = work(lambda table, rows: self._sqlite_insert(cursor, table, rows))
                cursor.execute("COMMIT")
                return result
            except BaseException:
                if raw.driver_connection.in_transaction:  # type: ignore[union-attr]
                    cursor.execute("ROLLBACK")
                raise
        finally:
            raw.close()

    def _sqlite_insert(self, cursor: sqlite3.Cursor, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        names = tuple(rows[0])
        key = (table.name, names)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = _PreparedInsert(table, self.engine.dialect, names)
        if len(rows) == 1:
            cursor.execute(prepared.sql, prepared.parameters(rows[0]))
            return [int(cursor.lastrowid or 0)]
        counter = "SELECT seq FROM sqlite_sequence WHERE name = ?"
        before = (cursor.execute(counter, (table.name,)).fetchone() or (0,))[0]
        cursor.executemany(prepared.sql, [prepared.parameters(row) for row in rows])
        after = cursor.execute(counter, (table.name,)).fetchone()[0]
        if after - before != len(rows):
            raise StoreError(f"{table.name}: expected {len(rows)} consecutive ids, the counter moved {after - before}")
        return list(range(before + 1, after + 1))

    def use_wal(self) -> None:
        """Switch a SQLite file to WAL journaling (persistent; done once the schema is known good)."""
        if self.dialect != "sqlite":
            return
        try:
            with self.engine.connect() as conn:
                driver = conn.connection.driver_connection
                if driver is not None:
                    driver.execute("PRAGMA journal_mode = WAL")
        except DBAPIError as exc:
            raise self.translate(exc) from None

    def _migrate_sqlite(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        driver = conn.connection.driver_connection
        if driver is None:
            raise StoreError("the SQLite connection is closed")
        driver.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                result = work(conn)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(
                        f"the migration left {len(broken)} broken foreign keys, e.g. {tuple(broken[0])}"
                    )
            return result
        finally:
            driver.execute("PRAGMA foreign_keys = ON")

    def translate(self, exc: SQLAlchemyError) -> StoreError:
        """The `tracker` error for a database error; its message names the store without a password."""
        where = self.location.safe_url
        orig = getattr(exc, "orig", None)
        detail = mask_password(
            str(orig if orig is not None else exc).strip().splitlines()[0]
            if str(orig if orig is not None else exc).strip()
            else type(exc).__name__
        )
        lowered = detail.lower()
        if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connection_error(exc):
            return StoreConnectionError(
                f"cannot reach the database {where}: {detail}. Check that the server is running "
                "and that the URL, user and password are right"
            )
        if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
            return ReadOnlyStoreError(f"the database {where} is read-only: {detail}")
        if "disk is full" in lowered or "disk full" in lowered or "no space" in lowered:
            return ReadOnlyStoreError(f"the disk holding {where} is full: {detail}")
        if "file is not a database" in lowered or "malformed" in lowered:
            return CorruptStoreError(f"{where} is not a usable SQLite database: {detail}")
        if "unable to open database" in lowered:
            return StoreConnectionError(f"cannot open the SQLite file behind {where}: {detail}")
        return StoreError(f"database error on {where}: {detail}")

    def dispose(self) -> None:
        self.engine.dispose()


Inserter = Callable[[Table, list[dict[str, Any]]], list[int]]
"""Inserts rows into a table within the current transaction and returns their ids in order."""


class _PreparedInsert:
    """An INSERT compiled once by SQLAlchemy from the table, with the columns' bind processors."""

    def __init__(self, table: Table, dialect: Dialect, names: tuple[str, ...]) -> None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(names))
        self.sql = str(compiled)
        order = compiled.positiontup or list(names)
        self.order = tuple(order)
        self.processors = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order)

    def parameters(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip((row.get(name) for name in self.order), self.processors, strict=True)
        )


def _is_transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None)
    if code in _TRANSIENT_SQLSTATES:
        return True
    if isinstance(exc, OperationalError):
        text = str(orig).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text
    return False


def _is_connection_error(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or ""
    if code.startswith("08") or code in ("28P01", "28000", "3D000", "57P01", "57P02", "57P03"):
        return True
    name = type(orig).__name__
    if name in ("OperationalError", "InterfaceError") and type(orig).__module__.startswith("psycopg"):
        return code == "" or code.startswith("08")
    return False


def _drop_dead_connection(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a pooled server connection whose socket is closed, or has unread data
    (the termination notice a restarting server sends), is replaced before use. A non-blocking
    peek costs no round trip, unlike a pre-ping query."""
    pgconn = getattr(dbapi_conn, "pgconn", None)
    if pgconn is None:
        return
    try:
        probe = socket.socket(fileno=os.dup(pgconn.socket))
    except OSError as exc:
        raise DisconnectionError("the connection has no socket") from exc
    try:
        waiting = probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return  # nothing to read: alive and idle
    except OSError as exc:
        raise DisconnectionError(f"the connection is broken: {exc}") from exc
    finally:
        probe.close()
    raise DisconnectionError("the server closed the connection" if not waiting else "the server sent a notice")


def _configure_sqlite(engine: Engine, synchronous: Synchronous) -> None:
    pragma = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}[synchronous]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA synchronous = {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("tracker_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _core_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT ... RETURNING through SQLAlchemy Core (insertmanyvalues for many rows)."""
    if len(rows) == 1:
        return [int(conn.execute(insert(table).returning(table.c.id), rows[0]).scalar_one())]
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(stmt, rows).scalars()]
